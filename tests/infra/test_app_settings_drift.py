"""The app settings the code reads and the app settings the Bicep sets must be the same set.

Code side:  every string literal "MI_ASSESS_..." in src/**/*.rs, plus every %MI_ASSESS_...% reference in
            functions/*/function.json and host.json.
Bicep side: every MI_ASSESS_... key of an object literal in infra/**/*.bicep (they all live in main.bicep's
            miAssessSettings, which becomes the site's app settings).
A name on one side only fails the test, which prints both sets.
"""

from __future__ import annotations

import json
import re
import tempfile
import unittest
from pathlib import Path

import infra_common as ic


def compare(code: set[str], bicep: set[str]) -> str | None:
    """None when equal, else a report naming both sets and both differences."""
    if code == bicep:
        return None
    return "\n".join([
        "MI_ASSESS_* app settings drifted between the code and the Bicep:",
        f"  read by the code (src/**/*.rs literals + function.json/host.json %refs%): {sorted(code)}",
        f"  set by the Bicep (infra/**/*.bicep):                                     {sorted(bicep)}",
        f"  read by the code but not set in Bicep: {sorted(code - bicep)}",
        f"  set in Bicep but not read by the code: {sorted(bicep - code)}",
    ])


def code_side(src: Path = ic.SRC, functions: Path = ic.FUNCTIONS, host_json: Path = ic.ROOT / "host.json") -> set[str]:
    names = set(ic.code_setting_literals(src))
    names |= {n for n in ic.percent_refs(functions, host_json) if ic.SETTING_NAME.fullmatch(n)}
    return names


class CompareLogic(unittest.TestCase):
    """The comparison itself, on made-up trees, so a broken extractor cannot pass silently."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        (self.root / "src" / "sub").mkdir(parents=True)
        (self.root / "functions" / "timer").mkdir(parents=True)
        (self.root / "src" / "config.rs").write_text(
            'const A: &str = "MI_ASSESS_A";\n'
            '// "MI_ASSESS_COMMENTED" in a comment still counts (a literal in the file)\n'
            'let msg = "set MI_ASSESS_NOT_A_LITERAL first";\n'
            'let prefix = "MI_ASSESS_";\n'
            'std::env::var(r"MI_ASSESS_RAW")\n')
        (self.root / "src" / "sub" / "x.rs").write_text('#[arg(env = "MI_ASSESS_B")]\n')
        (self.root / "functions" / "timer" / "function.json").write_text(json.dumps(
            {"bindings": [{"type": "timerTrigger", "name": "t", "direction": "in", "schedule": "%MI_ASSESS_S%"}]}))
        (self.root / "host.json").write_text(json.dumps({"customHandler": {"description": {"arguments": ["%OTHER%"]}}}))

    def tearDown(self):
        self.tmp.cleanup()

    def test_extracts_literals_and_percent_refs(self):
        got = code_side(self.root / "src", self.root / "functions", self.root / "host.json")
        self.assertEqual(got, {"MI_ASSESS_A", "MI_ASSESS_COMMENTED", "MI_ASSESS_RAW", "MI_ASSESS_B", "MI_ASSESS_S"})

    def test_equal_sets_pass(self):
        self.assertIsNone(compare({"MI_ASSESS_A"}, {"MI_ASSESS_A"}))

    def test_name_only_in_code_fails(self):
        report = compare({"MI_ASSESS_A", "MI_ASSESS_NEW"}, {"MI_ASSESS_A"})
        self.assertIsNotNone(report)
        self.assertIn("read by the code but not set in Bicep: ['MI_ASSESS_NEW']", report)

    def test_name_only_in_bicep_fails(self):
        report = compare({"MI_ASSESS_A"}, {"MI_ASSESS_A", "MI_ASSESS_OLD"})
        self.assertIsNotNone(report)
        self.assertIn("set in Bicep but not read by the code: ['MI_ASSESS_OLD']", report)

    def test_bicep_keys_ignore_comments_and_strings(self):
        code = ic.strip_bicep_comments(
            "var s = {\n  MI_ASSESS_X: x // MI_ASSESS_IN_COMMENT: y\n  'MI_ASSESS_Q': q\n}\n"
            "/* MI_ASSESS_BLOCK: z */\nvar t = 'MI_ASSESS_IN_STRING: no'\nvar u = { a: 1, MI_ASSESS_INLINE: 2 }\n")
        self.assertEqual(set(ic.bicep_object_keys(code)), {"MI_ASSESS_X", "MI_ASSESS_Q", "MI_ASSESS_INLINE"})


class RepositoryDrift(unittest.TestCase):
    def test_code_and_bicep_read_and_set_the_same_settings(self):
        if not ic.rust_sources():
            ic.cannot_check(self, "src/ has no .rs files yet")
        code = code_side()
        bicep = set(ic.bicep_settings())
        where = ic.code_setting_literals()
        report = compare(code, bicep)
        if report:
            report += "\n  code locations: " + json.dumps({k: sorted(set(v)) for k, v in sorted(where.items())})
        print(f"\n  code:  {sorted(code)}\n  bicep: {sorted(bicep)}")
        if report:
            self.fail(report)

    def test_all_settings_are_in_the_block_passed_to_the_site(self):
        main = ic.bicep_code(ic.INFRA / "main.bicep")
        block = ic.bicep_var_block(main, "miAssessSettings")
        self.assertEqual(set(ic.bicep_object_keys(block)), set(ic.bicep_settings()),
                         "every MI_ASSESS_* setting must be in main.bicep var miAssessSettings")
        self.assertRegex(main, r"appSettings:\s*miAssessSettings\b")
        app = ic.bicep_code(ic.INFRA / "modules" / "function-app.bicep")
        self.assertRegex(app, r"union\(\s*hostSettings\s*,\s*appSettings\s*\)")
        self.assertRegex(app, r"appSettings:\s*\[\s*for\s+s\s+in\s+items\(settings\)")

    def test_every_percent_reference_is_an_app_setting(self):
        main = ic.bicep_code(ic.INFRA / "main.bicep")
        app = ic.bicep_code(ic.INFRA / "modules" / "function-app.bicep")
        keys = set(ic.bicep_object_keys(main + app, r"[A-Za-z_][A-Za-z0-9_]*"))
        for name, where in ic.percent_refs().items():
            self.assertIn(name, keys, f"%{name}% used in {where} but no app setting {name} is set in the Bicep")

    def test_settings_come_from_documented_parameters(self):
        main = ic.bicep_code(ic.INFRA / "main.bicep")
        params = ic.bicep_params(main)
        derived = {"MI_ASSESS_RESULTS_URL"}  # built from the deployed results account + resultsContainerName
        for name, expr in ic.bicep_object_keys(ic.bicep_var_block(main, "miAssessSettings")).items():
            if name in derived:
                continue
            idents = set(re.findall(r"\b[A-Za-z_]\w*\b", re.sub(r"'[^']*'", "", expr)))
            used = idents & set(params)
            self.assertTrue(used, f"{name} = {expr!r} is not driven by a parameter")
            for p in used:
                self.assertTrue(params[p]["description"], f"param {p} (sets {name}) has no @description")
                self.assertIsNotNone(params[p]["default"], f"param {p} (sets {name}) has no production default")

    def test_production_defaults(self):
        main = ic.bicep_code(ic.INFRA / "main.bicep")
        block = ic.bicep_object_keys(ic.bicep_var_block(main, "miAssessSettings"))
        params = ic.bicep_params(main)

        def default_of(setting):
            return ic.bicep_string_literal(params[block[setting]]["default"])

        self.assertEqual(default_of("MI_ASSESS_SCHEDULE"), "0 0 2 * * *")
        self.assertEqual(default_of("MI_ASSESS_GRAPH_ENDPOINT"), "https://graph.microsoft.com")
        self.assertEqual(default_of("MI_ASSESS_ARM_ENDPOINT"), "https://management.azure.com")
        self.assertEqual(default_of("MI_ASSESS_AZURE_PLANE"), "optional")
        self.assertEqual(default_of("MI_ASSESS_PRIVILEGED_GROUPS"), "")
        self.assertEqual(default_of("MI_ASSESS_FIC_ALLOWED_ISSUERS"), "")
        self.assertEqual(default_of("MI_ASSESS_LOG"), "info")
        # Results URL = results account blob endpoint (ends with '/') + container: no trailing slash.
        self.assertEqual(block["MI_ASSESS_RESULTS_URL"], "resultsUrl")
        self.assertRegex(main, r"(?m)^var resultsUrl = '\$\{dataStorage\.outputs\.blobEndpoint\}\$\{resultsContainerName\}'$")
        # Empty client id = system-assigned identity unless a user-assigned identity is configured.
        self.assertRegex(block["MI_ASSESS_IDENTITY_CLIENT_ID"], r"\? .*\.clientId : ''$")
        self.assertEqual(ic.bicep_string_literal(params["userAssignedIdentityResourceId"]["default"]), "")


if __name__ == "__main__":
    unittest.main()
