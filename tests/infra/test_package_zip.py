"""scripts/package.sh --binary <path>: the deployment zip layout and the handler's exec bit.

Uses MI_ASSESS_BINARY (default target/debug/mi-assess): the glibc build is enough to check the layout.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest
import zipfile
from pathlib import Path

import infra_common as ic

PACKAGE = ic.ROOT / "scripts" / "package.sh"


def binary_path() -> Path:
    return Path(os.environ.get("MI_ASSESS_BINARY") or ic.ROOT / "target" / "debug" / "mi-assess")


class PackageZip(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.zip_path = Path(cls.tmp.name) / "out" / "mi-assess.zip"
        cls.binary = binary_path()
        cls.run_result = None
        if cls.binary.is_file():
            cls.run_result = subprocess.run(
                ["bash", str(PACKAGE), "--binary", str(cls.binary), "--output", str(cls.zip_path)],
                cwd=ic.ROOT, capture_output=True, text=True, timeout=300)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        if self.run_result is None:
            ic.cannot_check(self, f"no binary at {self.binary} (set MI_ASSESS_BINARY or run cargo build)")
        if self.run_result.returncode != 0:
            self.fail(f"package.sh failed ({self.run_result.returncode}):\n{self.run_result.stdout}\n{self.run_result.stderr}")

    def test_00_listing(self):
        # The listing package.sh prints: every file with its mode and size.
        print("\n" + self.run_result.stdout.rstrip())
        lines = self.run_result.stdout.splitlines()
        self.assertRegex(self.run_result.stdout, r"(?m)^-rwxr-xr-x\s+755\s+\d+\s+mi-assess$")
        self.assertRegex(self.run_result.stdout, r"(?m)^-rw-r--r--\s+644\s+\d+\s+host\.json$")
        self.assertTrue(any(l.startswith("6 files;") or re.match(r"^\d+ files;", l) for l in lines))

    def test_layout_is_exactly_host_binary_and_functions(self):
        expected = {"host.json", "mi-assess"} | {f"{n}/function.json" for n in ic.EXPECTED_FUNCTIONS}
        with zipfile.ZipFile(self.zip_path) as zf:
            names = zf.namelist()
        self.assertEqual(len(names), len(set(names)), "duplicate entries")
        self.assertEqual(set(names), expected)
        for name in names:
            self.assertFalse(name.startswith(("/", "target/", "src/", "functions/", "dist/", ".")), name)

    def test_nothing_funcignore_excludes(self):
        patterns = [l.strip() for l in ic.read(ic.ROOT / ".funcignore").splitlines()
                    if l.strip() and not l.startswith("#")]
        with zipfile.ZipFile(self.zip_path) as zf:
            for name in zf.namelist():
                top = name.split("/")[0]
                hit = [p for p in patterns if fnmatch.fnmatch(top, p) or fnmatch.fnmatch(name, p)]
                self.assertEqual(hit, [], f"{name} matches .funcignore {hit}")

    def test_handler_exec_bit_is_stored(self):
        with zipfile.ZipFile(self.zip_path) as zf:
            info = zf.getinfo("mi-assess")
            mode = info.external_attr >> 16
            self.assertEqual(info.create_system, 3, "Unix host system, or extractors ignore the mode")
            self.assertTrue(stat.S_ISREG(mode), oct(mode))
            self.assertEqual(mode & 0o777, 0o755, oct(mode))
            for other in zf.infolist():
                if other.filename != "mi-assess":
                    self.assertEqual((other.external_attr >> 16) & 0o777, 0o644, other.filename)

    def test_contents_are_the_repository_files(self):
        with zipfile.ZipFile(self.zip_path) as zf:
            self.assertEqual(zf.read("mi-assess"), self.binary.read_bytes())
            self.assertEqual(zf.read("host.json"), (ic.ROOT / "host.json").read_bytes())
            host = json.loads(zf.read("host.json"))
            self.assertEqual(host["customHandler"]["description"]["defaultExecutablePath"], "mi-assess")
            for n in ic.EXPECTED_FUNCTIONS:
                self.assertEqual(zf.read(f"{n}/function.json"), (ic.FUNCTIONS / n / "function.json").read_bytes())
            self.assertIsNone(zf.testzip())
            self.assertEqual(zf.read("mi-assess")[:4], b"\x7fELF")

    def test_unzip_restores_an_executable_handler(self):
        unzip = shutil.which("unzip")
        if not unzip:
            self.skipTest("unzip not installed")
        out = Path(self.tmp.name) / "extracted"
        subprocess.run([unzip, "-q", "-o", str(self.zip_path), "-d", str(out)], check=True)
        self.assertTrue(os.access(out / "mi-assess", os.X_OK))
        self.assertFalse(os.access(out / "host.json", os.X_OK))

    def test_reproducible(self):
        again = Path(self.tmp.name) / "again.zip"
        subprocess.run(["bash", str(PACKAGE), "--binary", str(self.binary), "--output", str(again)],
                       cwd=ic.ROOT, check=True, capture_output=True, timeout=300)
        self.assertEqual(again.read_bytes(), self.zip_path.read_bytes())


class PackageScript(unittest.TestCase):
    def test_rejects_a_non_elf_binary(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(["bash", str(PACKAGE), "--binary", str(ic.ROOT / "host.json"), "--output",
                                str(Path(tmp) / "x.zip")], capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not an ELF executable", r.stderr)
            self.assertFalse((Path(tmp) / "x.zip").exists())

    def test_rejects_a_missing_binary(self):
        r = subprocess.run(["bash", str(PACKAGE), "--binary", "/nonexistent/mi-assess", "--output", "/tmp/none.zip"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("binary not found", r.stderr)

    def test_default_build_is_the_static_musl_dist_profile(self):
        script = ic.read(PACKAGE)
        self.assertIn("TARGET=x86_64-unknown-linux-musl", script)
        self.assertIn("PROFILE=dist", script)
        self.assertIn("musl-tools", script)
        self.assertIn("rustup target add", script)
        self.assertIn('OUTPUT="$ROOT/dist/mi-assess.zip"', script)
        self.assertRegex(ic.read(ic.ROOT / "Cargo.toml"), r"(?m)^\[profile\.dist\]")


class AzdConfig(unittest.TestCase):
    def test_azure_yaml_deploys_the_package_zip(self):
        text = ic.read(ic.ROOT / "azure.yaml")
        m = re.search(r"(?m)^services:\n  ([a-z0-9-]+):\n((?:    .*\n|\s*\n)+)", text + "\n")
        self.assertTrue(m, "one service under services:")
        service, body = m.group(1), m.group(2)
        for line in ["host: function", "language: custom", "dist: dist/mi-assess.zip", "remoteBuild: false",
                     "project: .", "run: ./scripts/package.sh"]:
            self.assertIn(line, body)
        self.assertRegex(body, r"hooks:\n(?:\s*#.*\n)*\s+prepackage:")
        # azd finds the site by its azd-service-name tag.
        app = ic.bicep_params(ic.bicep_code(ic.INFRA / "modules" / "function-app.bicep"))
        self.assertEqual(ic.bicep_string_literal(app["azdServiceName"]["default"]), service)
        self.assertRegex(text, r"(?m)^  path: infra$")


if __name__ == "__main__":
    unittest.main()
