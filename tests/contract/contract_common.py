"""Shared helpers of the contract tests (tests/contract/): sample discovery, schema loading, format
checking and the marked blocks of docs/ingestion.md.

Owns: how a sample file is classified (KIND_RULES), how records are read and validated (once, cached:
validation_report()), and how the recipes are extracted from the documentation (marked_blocks()).
Python stdlib plus the pinned jsonschema (tests/contract/requirements.txt).

Samples: the directory in $MI_ASSESS_CONTRACT_SAMPLES (default target/contract-samples), searched
recursively. A file's kind comes from its path relative to that directory:

    */identities.ndjson, *-identities.ndjson, *_identities.ndjson, *.identities.ndjson  identity, one per line
    ...findings.ndjson                                                                   finding, one per line
    ...changes.ndjson                                                                    change, one per line
    ...manifest.json (one document) or ...manifests.ndjson (one per line)                manifest
    latest/<anything>.json or .ndjson                                                    latest pointer
    scans/<anything>.json or .ndjson                                                     scan status
    ...suppressions.json                                                                 suppressions file
    ...cli-summary.json                                                                  assess --format json

attack-graph.json (BloodHound OpenGraph) is validated by test_opengraph.py, findings.ocsf.json and
findings.csv (the exports) by test_exports.py. Everything else
(snapshot.json.gz, report.html, locks/, logs) is ignored; other .json/.ndjson files are
listed as unclassified, without failing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
DOCS = ROOT / "docs" / "ingestion.md"

# kind -> schema file
SCHEMA_FILES = {
    "identity": "identity.schema.json",
    "finding": "finding.schema.json",
    "change": "change.schema.json",
    "manifest": "manifest.schema.json",
    "latest": "latest.schema.json",
    "scan-status": "scan-status.schema.json",
    "suppressions": "suppressions.schema.json",
    "cli-summary": "cli-summary.schema.json",
}
KINDS = list(SCHEMA_FILES)
# Kinds every sample set must contain, so the suite cannot pass on nothing.
REQUIRED_KINDS = ("identity", "finding", "manifest", "latest", "cli-summary")
# Kinds whose documents carry schemaVersion. suppressions.json is an input file parsed with
# deny_unknown_fields (src/snapshot/suppressions.rs), so it cannot carry one: its version is the schema's $id.
VERSIONED_KINDS = tuple(k for k in KINDS if k != "suppressions")

_SEP = r"(?:^|/|[-_.])"
KIND_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("identity", re.compile(_SEP + r"identities\.ndjson$"), "lines"),
    ("finding", re.compile(_SEP + r"findings\.ndjson$"), "lines"),
    ("change", re.compile(_SEP + r"changes\.ndjson$"), "lines"),
    ("manifest", re.compile(_SEP + r"manifest\.json$"), "document"),
    ("manifest", re.compile(_SEP + r"manifests\.ndjson$"), "lines"),
    ("latest", re.compile(r"(?:^|/)latest/[^/]+\.json$"), "document"),
    ("latest", re.compile(r"(?:^|/)latest/[^/]+\.ndjson$"), "lines"),
    ("scan-status", re.compile(r"(?:^|/)scans/[^/]+\.json$"), "document"),
    ("scan-status", re.compile(r"(?:^|/)scans/[^/]+\.ndjson$"), "lines"),
    ("suppressions", re.compile(_SEP + r"suppressions\.json$"), "document"),
    ("cli-summary", re.compile(_SEP + r"cli-summary\.json$"), "document"),
]


def samples_dir() -> Path:
    return Path(os.environ.get("MI_ASSESS_CONTRACT_SAMPLES") or ROOT / "target" / "contract-samples").resolve()


# ---------------------------------------------------------------------------------------------
# formats: jsonschema only asserts "date-time" when rfc3339-validator is installed; this suite
# stays on its two pinned packages, so it registers a stdlib RFC 3339 check itself.

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$"
)


def is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True  # format only applies to strings
    m = _RFC3339.match(value)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if second > 60 or (m.group(9) and (int(m.group(9)) > 23 or int(m.group(10)) > 59)):
        return False
    try:
        datetime(year, month, day, hour, minute, min(second, 59))  # 60: leap second
    except ValueError:
        return False
    return True


def format_checker() -> FormatChecker:
    checker = FormatChecker()  # every format jsonschema knows (uuid, email, ...)
    checker.checks("date-time")(is_rfc3339)
    return checker


# ---------------------------------------------------------------------------------------------
# schemas


@lru_cache(maxsize=None)
def schema(kind: str) -> dict:
    return json.loads((SCHEMAS / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))


def schema_version(kind: str) -> str:
    """The version a schema documents: the last segment of its $id."""
    return schema(kind)["$id"].rstrip("/").rsplit("/", 1)[-1]


def strict(node):
    """A copy of a schema in which every object schema with declared properties rejects others.

    The published schemas allow unknown properties (consumers must ignore them); the producer must
    not emit a property the schema does not document, so the tests validate against this copy too.
    """
    if isinstance(node, dict):
        out = {k: strict(v) for k, v in node.items()}
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


@lru_cache(maxsize=None)
def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(schema(kind), format_checker=format_checker())


@lru_cache(maxsize=None)
def strict_validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(strict(schema(kind)), format_checker=format_checker())


def schema_has_path(kind: str, path: list[str]) -> bool:
    """True when the schema declares the property path (through $ref, anyOf/oneOf/allOf)."""

    root = schema(kind)

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            target = root
            for part in ref[2:].split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def walk(node: dict, rest: list[str]) -> bool:
        node = resolve(node)
        if not rest:
            return True
        branches = [node] + [b for key in ("anyOf", "oneOf", "allOf") for b in node.get(key, [])]
        for branch in branches:
            branch = resolve(branch)
            props = branch.get("properties", {})
            if rest[0] in props and walk(props[rest[0]], rest[1:]):
                return True
        return False

    return walk(root, path)


# ---------------------------------------------------------------------------------------------
# samples


@dataclass
class Record:
    kind: str
    file: Path  # absolute
    line: int | None  # 1-based for NDJSON, None for a whole document
    doc: object

    @property
    def where(self) -> str:
        rel = self.file.relative_to(samples_dir())
        return f"{rel}:{self.line}" if self.line else str(rel)


@dataclass
class Samples:
    root: Path
    records: dict[str, list[Record]] = field(default_factory=lambda: {k: [] for k in KINDS})
    files: dict[str, list[Path]] = field(default_factory=lambda: {k: [] for k in KINDS})
    parse_errors: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unclassified: list[Path] = field(default_factory=list)
    attack_graphs: list[Path] = field(default_factory=list)
    ocsf_exports: list[Path] = field(default_factory=list)
    csv_exports: list[Path] = field(default_factory=list)


def classify(rel: str) -> tuple[str, str] | None:
    for kind, pattern, shape in KIND_RULES:
        if pattern.search(rel):
            return kind, shape
    return None


def ndjson_lines(path: Path) -> list[str]:
    """The lines of an NDJSON file (the final newline does not make an extra line)."""
    text = path.read_text(encoding="utf-8")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n") if text else []


@lru_cache(maxsize=None)
def load_samples() -> Samples:
    root = samples_dir()
    samples = Samples(root=root)
    if not root.is_dir():
        return samples
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        found = classify(rel)
        if found is None:
            if path.name == "attack-graph.json":
                samples.attack_graphs.append(path)
            elif path.name == "findings.ocsf.json":
                samples.ocsf_exports.append(path)
            elif path.name == "findings.csv":
                samples.csv_exports.append(path)
            elif path.suffix in (".json", ".ndjson"):
                samples.unclassified.append(path)
            continue
        kind, shape = found
        samples.files[kind].append(path)
        if shape == "document":
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                samples.parse_errors[kind].append(f"{rel}: not JSON: {e}")
                continue
            samples.records[kind].append(Record(kind, path, None, doc))
            continue
        for number, line in enumerate(ndjson_lines(path), start=1):
            if not line.strip():
                samples.parse_errors[kind].append(f"{rel}:{number}: blank line inside NDJSON")
                continue
            try:
                doc = json.loads(line)
            except ValueError as e:
                samples.parse_errors[kind].append(f"{rel}:{number}: not JSON: {e}")
                continue
            samples.records[kind].append(Record(kind, path, number, doc))
    return samples


@dataclass
class Report:
    counts: dict[str, int]
    invalid: dict[str, list[str]]  # kind -> "where: problem"
    undocumented: dict[str, list[str]]  # kind -> "where: problem" (strict copy of the schema)
    version_mismatch: dict[str, list[str]]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def invalid_total(self) -> int:
        return sum(len(v) for v in self.invalid.values())


def _first_error_lines(v: Draft202012Validator, doc: object, limit: int = 3) -> list[str]:
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message[:300]}" for e in errors[:limit]]


@lru_cache(maxsize=None)
def validation_report() -> Report:
    samples = load_samples()
    counts = {k: 0 for k in KINDS}
    invalid = {k: list(samples.parse_errors[k]) for k in KINDS}
    undocumented = {k: [] for k in KINDS}
    mismatch = {k: [] for k in KINDS}
    for kind in KINDS:
        v, sv = validator(kind), strict_validator(kind)
        documented = schema_version(kind)
        for rec in samples.records[kind]:
            counts[kind] += 1
            problems = _first_error_lines(v, rec.doc)
            if problems:
                invalid[kind].append(f"{rec.where}: " + "; ".join(problems))
                continue
            extra = _first_error_lines(sv, rec.doc)
            if extra:
                undocumented[kind].append(f"{rec.where}: " + "; ".join(extra))
            if kind in VERSIONED_KINDS and rec.doc.get("schemaVersion") != documented:
                mismatch[kind].append(
                    f"{rec.where}: schemaVersion {rec.doc.get('schemaVersion')!r}, but "
                    f"schemas/{SCHEMA_FILES[kind]} documents {documented}"
                )
    return Report(counts, invalid, undocumented, mismatch)


def summary_line(extra_failures: int = 0) -> str:
    r = validation_report()
    per_kind = ", ".join(f"{k} {r.counts[k]}" for k in KINDS)
    return f"contract: {r.total} records validated ({per_kind}), {r.invalid_total + extra_failures} failures"


# ---------------------------------------------------------------------------------------------
# docs/ingestion.md: blocks preceded by <!-- key: args --> (blank lines allowed in between)

_MARKED = re.compile(
    r"<!--\s*(?P<key>[a-z0-9-]+):\s*(?P<args>[^>]*?)\s*-->\s*\n(?:[ \t]*\n)*"
    r"(?P<fence>```+)[^\n]*\n(?P<body>.*?)\n(?P=fence)[ \t]*(?:\n|$)",
    re.S,
)
_MARKER = re.compile(r"<!--\s*(?P<key>[a-z0-9-]+):\s*(?P<args>[^>]*?)\s*-->")


@lru_cache(maxsize=None)
def doc_text() -> str:
    return DOCS.read_text(encoding="utf-8")


def marked_blocks(key: str) -> list[tuple[str, str]]:
    """(args, code) of every fenced block marked <!-- key: args -->."""
    return [(m["args"], m["body"]) for m in _MARKED.finditer(doc_text()) if m["key"] == key]


def markers(key: str) -> list[str]:
    """args of every marker <!-- key: args -->, whether or not a code block follows."""
    return [m["args"] for m in _MARKER.finditer(doc_text()) if m["key"] == key]


def json_path_value(doc: object, path: str) -> tuple[bool, object]:
    """(present, value) of a simple JSON path: $ or $.a.b.c."""
    if path == "$":
        return True, doc
    assert path.startswith("$."), path
    node = doc
    for part in path[2:].split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node
