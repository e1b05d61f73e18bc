"""Shared helpers for the offline infrastructure tests (Python stdlib only).

Run everything with scripts/validate-infra.sh, or directly:
    python3 tests/infra/run_tests.py
Environment:
    MI_ASSESS_INFRA_STRICT=1   turn "cannot check here" skips (no pycep, no binary, no src) into failures
    MI_ASSESS_BINARY=PATH      binary for the zip-layout test (default target/debug/mi-assess)
"""

from __future__ import annotations

import json
import os
import re
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SRC = ROOT / "src"
FUNCTIONS = ROOT / "functions"
STRICT = os.environ.get("MI_ASSESS_INFRA_STRICT") == "1"

# The functions the handler dispatches on (POST /<name> from the host); folder names under functions/.
EXPECTED_FUNCTIONS = {"nightly-assessment", "scans", "identity", "scan-worker", "scan-worker-poison"}

SETTING_NAME = re.compile(r"MI_ASSESS_[A-Z0-9_]+")
RUST_SETTING_LITERAL = re.compile(r'"(MI_ASSESS_[A-Z0-9_]+)"')
PERCENT_REF = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


def cannot_check(test: unittest.TestCase, why: str) -> None:
    """Skip a check that needs something absent here; fail instead under MI_ASSESS_INFRA_STRICT=1."""
    if STRICT:
        test.fail(f"{why} (MI_ASSESS_INFRA_STRICT=1)")
    test.skipTest(why)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def strip_bicep_comments(text: str) -> str:
    """Remove // and /* */ comments, leaving string literals ('...' and '''...''') intact."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("'''", i):
            j = text.find("'''", i + 3)
            j = n if j < 0 else j + 3
            out.append(text[i:j])
            i = j
        elif text[i] == "'":
            j = i + 1
            while j < n and text[j] != "'" and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def bicep_code(path: Path) -> str:
    return strip_bicep_comments(read(path))


def brace_block(text: str, start: int) -> str:
    """The {...} block whose opening brace is the first one at or after `start`."""
    open_at = text.index("{", start)
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at : k + 1]
    raise ValueError("unbalanced braces")


def bicep_var_block(code: str, var_name: str) -> str:
    m = re.search(rf"(?m)^var\s+{re.escape(var_name)}\s*=\s*\{{", code)
    if not m:
        raise AssertionError(f"var {var_name} = {{...}} not found")
    return brace_block(code, m.start())


def bicep_object_keys(code: str, pattern: str = r"MI_ASSESS_[A-Z0-9_]+") -> dict[str, str]:
    """Object keys matching `pattern` (bare or quoted) with the raw value expression on the same line."""
    keys: dict[str, str] = {}
    for m in re.finditer(rf"(?m)(?:^|[{{,])\s*'?({pattern})'?\s*:\s*(.*)$", code):
        keys[m.group(1)] = m.group(2).strip().rstrip(",").strip()
    return keys


def bicep_settings() -> dict[str, str]:
    """Every MI_ASSESS_* key set in an object literal in any infra/**/*.bicep file -> value expression."""
    found: dict[str, str] = {}
    for f in bicep_files():
        found.update(bicep_object_keys(bicep_code(f)))
    return found


def bicep_params(code: str) -> dict[str, dict]:
    """param name -> {type, default (raw text or None), description (bool)} of a Bicep file (comments stripped)."""
    params: dict[str, dict] = {}
    lines = code.splitlines()
    for idx, line in enumerate(lines):
        m = re.match(r"^param\s+(\w+)\s+([\w\[\]?]+)(?:\s*=\s*(.*))?$", line.strip())
        if not m:
            continue
        decorators = []
        k = idx - 1
        while k >= 0 and (lines[k].strip().startswith("@") or lines[k].strip() == ""):
            if lines[k].strip():
                decorators.append(lines[k].strip())
            k -= 1
        params[m.group(1)] = {
            "type": m.group(2),
            "default": m.group(3).strip() if m.group(3) else None,
            "description": any(d.startswith("@description(") for d in decorators),
        }
    return params


def bicep_string_literal(raw: str | None) -> str | None:
    """The value of a single-quoted Bicep string literal without interpolation, else None."""
    if raw is None:
        return None
    m = re.fullmatch(r"'((?:[^'\\$]|\\.)*)'", raw.strip())
    return m.group(1).replace("\\'", "'") if m else None


def bicep_var_string(code: str, name: str) -> str | None:
    m = re.search(rf"(?m)^var\s+{re.escape(name)}\s*=\s*(.+)$", code)
    return bicep_string_literal(m.group(1)) if m else None


def rust_sources(src: Path = SRC) -> list[Path]:
    return sorted(src.rglob("*.rs")) if src.is_dir() else []


def code_setting_literals(src: Path = SRC) -> dict[str, list[str]]:
    """MI_ASSESS_* names used as complete string literals in src/**/*.rs -> files using them."""
    found: dict[str, list[str]] = {}
    for f in rust_sources(src):
        for name in RUST_SETTING_LITERAL.findall(read(f)):
            found.setdefault(name, []).append(str(f.relative_to(src.parent)))
    return found


def function_jsons(functions: Path = FUNCTIONS) -> dict[str, dict]:
    return {p.parent.name: json.loads(read(p)) for p in sorted(functions.glob("*/function.json"))}


def json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def percent_refs(functions: Path = FUNCTIONS, host_json: Path = ROOT / "host.json") -> dict[str, list[str]]:
    """%SETTING% references in function.json files and host.json -> where they occur."""
    refs: dict[str, list[str]] = {}
    docs = {f"functions/{n}/function.json": d for n, d in function_jsons(functions).items()}
    if host_json.is_file():
        docs["host.json"] = json.loads(read(host_json))
    for where, doc in docs.items():
        for s in json_strings(doc):
            for name in PERCENT_REF.findall(s):
                refs.setdefault(name, []).append(where)
    return refs


# --- NCRONTAB ---------------------------------------------------------------------------------------

_NCRONTAB_FIELDS = [
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}),
    ("day-of-week", 0, 6, {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
]


def ncrontab_errors(expr: str) -> list[str]:
    """Errors in a 6-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week})."""
    fields = expr.split()
    if len(fields) != 6:
        return [f"{expr!r}: {len(fields)} fields, NCRONTAB for Azure Functions needs 6 (with seconds)"]
    errors = []
    for text, (name, lo, hi, names) in zip(fields, _NCRONTAB_FIELDS):
        for item in text.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                errors.append(f"{name}: bad step in {item!r}")
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(bounds):
                errors.append(f"{name}: bad item {item!r}")
                continue
            values = []
            for b in bounds:
                v = names.get(b.upper()) if b.upper() in names else (int(b) if b.isdigit() else None)
                if v is None or not lo <= v <= hi:
                    errors.append(f"{name}: {b!r} outside {lo}-{hi}")
                values.append(v)
            if len(values) == 2 and None not in values and values[0] > values[1]:
                errors.append(f"{name}: empty range {base!r}")
    return errors
