#!/usr/bin/env python3
"""Checks that the crate's modules depend on each other one way only (docs/architecture.md).

Every top-level module of src/ belongs to a layer; a module may use modules of its own layer or
of a lower one, never of a higher one. The check reads the `crate::` and `super::` paths in the
code (use lines and inline paths), with comments and `#[cfg(test)]` code left out: tests may
drive a layer from above (the rule tests run rules through the assessor).

    scripts/check-layers.py            check src/, exit 1 on any violation
    scripts/check-layers.py --self-test  prove the check fails on a violation
"""

from __future__ import annotations

import pathlib
import re
import sys
import tempfile

# Lowest first. A module may import its own layer and the layers before it.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["model", "classification", "config", "telemetry", "auth", "http", "progress", "permission_map"]),
    ("snapshot", ["snapshot"]),
    ("resolve", ["resolve"]),
    ("rules", ["rules"]),
    ("assess", ["assess"]),
    ("collection", ["graph", "arm", "collect", "usage"]),
    ("outputs", ["changes", "report", "summary", "results", "opengraph", "export"]),
    ("pipeline", ["pipeline", "simulator"]),
    ("entry", ["host", "cli", "terminal"]),
]

RANK = {module: rank for rank, (_, modules) in enumerate(LAYERS) for module in modules}
LAYER_NAME = {module: name for name, modules in LAYERS for module in modules}


def strip_comments(text: str) -> str:
    """Drops // comments (doc comments included), /* */ blocks and string contents, except strings
    that are a path (`#[serde(default = "crate::x::f")]` is a real dependency)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            literal = text[i : j + 1]
            out.append(literal if re.fullmatch(r'"crate::[\w:]+"', literal) else '""')
            i = j + 1
        elif text.startswith("r#", i) and '"' in text[i : i + 5]:
            hashes = text[i + 1 : text.index('"', i)]
            end = text.find('"' + hashes, text.index('"', i) + 1)
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
            i = end
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_test_code(text: str) -> str:
    """Drops inline `#[cfg(test)] mod name { ... }` blocks by brace matching."""
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([a-z]+\))?\s+)?mod\s+\w+\s*\{")
    while (m := pattern.search(text)) is not None:
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        text = text[: m.start()] + text[j:]
    return text


def test_files(src: pathlib.Path) -> set[pathlib.Path]:
    """Files declared as `#[cfg(test)] mod name;` by their parent module."""
    found = set()
    for path in src.rglob("*.rs"):
        for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+(\w+)\s*;", path.read_text()):
            folder = path.parent if path.name in ("mod.rs", "lib.rs") else path.with_suffix("")
            for candidate in (folder / f"{m.group(1)}.rs", folder / m.group(1) / "mod.rs"):
                found.add(candidate)
    return found


def top_module(src: pathlib.Path, path: pathlib.Path) -> str | None:
    parts = path.relative_to(src).parts
    if len(parts) == 1:
        return None if parts[0] in ("lib.rs", "main.rs") else parts[0][:-3]
    return parts[0]


def referenced(src: pathlib.Path, path: pathlib.Path, code: str) -> set[str]:
    """Top-level modules a file's code names through `crate::` (and `super::` from a top file)."""
    names = set()
    for m in re.finditer(r"\bcrate::\{", code):
        depth, j, start = 1, m.end(), m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        group, depth, item = code[start : j - 1], 0, ""
        for ch in group + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if depth == 0 and ch == ",":
                head = re.match(r"\s*(\w+)", item)
                if head:
                    names.add(head.group(1))
                item = ""
            else:
                item += ch
    names.update(re.findall(r"\bcrate::(\w+)", code))
    depth_in_top = len(path.relative_to(src).parts) - (1 if path.name == "mod.rs" else 0)
    if depth_in_top == 1:
        # In src/x.rs or src/x/mod.rs, `super::` is the crate root.
        names.update(re.findall(r"\bsuper::(\w+)", code))
    return names


def check(src: pathlib.Path) -> list[str]:
    problems = []
    tests = test_files(src)
    for path in sorted(src.rglob("*.rs")):
        module = top_module(src, path)
        if module is None or path in tests:
            continue
        if module not in RANK:
            problems.append(f"{path}: module `{module}` has no layer in scripts/check-layers.py")
            continue
        code = strip_test_code(strip_comments(path.read_text()))
        for name in sorted(referenced(src, path, code)):
            if name in RANK and RANK[name] > RANK[module]:
                problems.append(
                    f"{path}: `{module}` ({LAYER_NAME[module]}) uses `{name}` "
                    f"({LAYER_NAME[name]}), a higher layer"
                )
    return problems


def self_test() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp)
        (src / "rules").mkdir()
        (src / "rules" / "mod.rs").write_text(
            "//! uses crate::pipeline in a comment only\n"
            "use crate::{model::Severity, snapshot::{A, B}};\n"
            "#[cfg(test)]\nmod tests {\n    use crate::assess::assess;\n}\n"
        )
        (src / "model.rs").write_text('const S: &str = "see crate::pipeline";\n')
        assert check(src) == [], check(src)
        (src / "rules" / "x.rs").write_text("use crate::{\n    assess::Assessor,\n};\n")
        (src / "resolve.rs").write_text("fn f() { crate::rules::evaluate(); }\n")
        problems = check(src)
        assert len(problems) == 2, problems
        assert "`resolve` (resolve) uses `rules`" in problems[0], problems
        assert "`rules` (rules) uses `assess`" in problems[1], problems
    print("check-layers self-test: ok")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    src = pathlib.Path(__file__).resolve().parent.parent / "src"
    problems = check(src)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check-layers: {len(problems)} violation(s); see docs/architecture.md", file=sys.stderr)
        return 1
    print(f"check-layers: {sum(1 for _ in src.rglob('*.rs'))} files, every dependency runs down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
