"""Contract tests on the records mi-assess produced (the samples directory, see contract_common).

Owns: every NDJSON line and JSON document validates against its schema; the core kinds (identity,
finding, manifest, latest) are present, so the suite cannot pass on nothing; nothing undocumented is
emitted; records carry the version their schema documents; and the cross-file promises consumers rely
on hold wherever the files sit side by side (manifest counts and sizes, latest -> manifest, scan status
-> manifest, identity finding counts, change counts).
"""

from __future__ import annotations

import json
import unittest
from collections import Counter
from pathlib import Path

import contract_common as cc

SEVERITY_ORDER = ["info", "low", "medium", "high", "critical"]
DATA_FILES = {"identities.ndjson": "identity", "findings.ndjson": "finding", "changes.ndjson": "change"}


def _fail_list(test: unittest.TestCase, problems: list[str], what: str, limit: int = 25) -> None:
    if problems:
        shown = "\n  ".join(problems[:limit])
        more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
        test.fail(f"{len(problems)} {what}:\n  {shown}{more}")


class RecordValidation(unittest.TestCase):
    def test_samples_directory_exists(self):
        self.assertTrue(cc.samples_dir().is_dir(), f"no samples directory {cc.samples_dir()}")

    def test_core_kinds_are_present(self):
        counts = cc.validation_report().counts
        missing = [k for k in cc.REQUIRED_KINDS if counts[k] == 0]
        self.assertFalse(missing, f"validated zero records of {missing} in {cc.samples_dir()}: "
                                  "the contract would pass on nothing")

    def test_every_record_matches_its_schema(self):
        report = cc.validation_report()
        problems = [p for kind in cc.KINDS for p in report.invalid[kind]]
        _fail_list(self, problems, "records do not match their schema")

    def test_no_undocumented_properties(self):
        report = cc.validation_report()
        problems = [p for kind in cc.KINDS for p in report.undocumented[kind]]
        _fail_list(self, problems, "records carry properties their schema does not document "
                                   "(add them to schemas/, with a minor version bump)")

    def test_records_carry_the_version_their_schema_documents(self):
        report = cc.validation_report()
        problems = [p for kind in cc.KINDS for p in report.version_mismatch[kind]]
        _fail_list(self, problems, "records and schemas disagree on the version")

    def test_ndjson_files_end_with_a_newline(self):
        problems = []
        samples = cc.load_samples()
        for kind in ("identity", "finding", "change"):
            for path in samples.files[kind]:
                data = path.read_bytes()
                if data and not data.endswith(b"\n"):
                    problems.append(f"{path.relative_to(samples.root)}: last line has no newline")
        _fail_list(self, problems, "NDJSON files are not newline-terminated")


class CrossReferences(unittest.TestCase):
    """Promises between files, checked only where the related files are present."""

    def setUp(self):
        self.samples = cc.load_samples()
        self.by_dir: dict[Path, dict[str, list[cc.Record]]] = {}
        for kind in ("identity", "finding", "change", "manifest"):
            for rec in self.samples.records[kind]:
                self.by_dir.setdefault(rec.file.parent, {}).setdefault(kind, []).append(rec)

    def test_manifest_describes_the_files_beside_it(self):
        problems, checked = [], 0
        for rec in self.samples.records["manifest"]:
            if rec.line is not None or not isinstance(rec.doc, dict):
                continue
            m, folder = rec.doc, rec.file.parent
            for entry in m.get("files", []):
                path = folder / entry.get("name", "")
                if entry.get("name") not in DATA_FILES or not path.is_file():
                    continue
                checked += 1
                lines = len(cc.ndjson_lines(path))
                if entry.get("records") != lines:
                    problems.append(f"{rec.where}: files[{entry['name']}].records = {entry.get('records')}, file has {lines} lines")
                if entry.get("bytes") != path.stat().st_size:
                    problems.append(f"{rec.where}: files[{entry['name']}].bytes = {entry.get('bytes')}, file has {path.stat().st_size}")
            here = self.by_dir.get(folder, {})
            counts = m.get("counts", {})
            if (folder / "identities.ndjson").is_file():
                identities = [r.doc for r in here.get("identity", [])]
                kinds = Counter(i.get("kind") for i in identities)
                for key, value in (("identities", len(identities)), ("systemAssigned", kinds["systemAssigned"]),
                                   ("userAssigned", kinds["userAssigned"])):
                    if counts.get(key) != value:
                        problems.append(f"{rec.where}: counts.{key} = {counts.get(key)}, identities.ndjson says {value}")
            if (folder / "findings.ndjson").is_file():
                findings = [r.doc for r in here.get("finding", [])]
                if counts.get("findings") != len(findings):
                    problems.append(f"{rec.where}: counts.findings = {counts.get('findings')}, findings.ndjson has {len(findings)}")
                by_severity = Counter(f.get("severity") for f in findings)
                expected = {s: by_severity[s] for s in SEVERITY_ORDER}
                if counts.get("findingsBySeverity") != expected:
                    problems.append(f"{rec.where}: counts.findingsBySeverity = {counts.get('findingsBySeverity')}, findings say {expected}")
                if "suppressed" in counts and counts["suppressed"] != sum(1 for f in findings if f.get("suppressed")):
                    problems.append(f"{rec.where}: counts.suppressed = {counts['suppressed']}, findings disagree")
            if "changes" in counts and (folder / "changes.ndjson").is_file():
                types = Counter(c.doc.get("changeType") for c in here.get("change", []))
                expected = {kind: types[kind] for kind in ("new", "resolved", "severityChanged")}
                if "suppressionChanged" in counts["changes"]:  # manifest 1.3.0 and later
                    expected["suppressionChanged"] = types["suppressionChanged"]
                if counts["changes"] != expected:
                    problems.append(f"{rec.where}: counts.changes = {counts['changes']}, changes.ndjson says {expected}")
        _fail_list(self, problems, "manifest promises broken")
        print(f"  (manifests: {checked} file entries compared with the files beside them)")

    def test_latest_points_at_a_complete_manifest(self):
        problems, checked = [], 0
        for rec in self.samples.records["latest"]:
            doc = rec.doc
            if not isinstance(doc, dict) or not isinstance(doc.get("manifest"), str):
                continue
            if doc["manifest"] != doc.get("prefix", "") + "/manifest.json":
                problems.append(f"{rec.where}: manifest is not prefix + /manifest.json")
            # latest/ sits at the root of a results layout; the manifest path is relative to that root
            target = rec.file.parent.parent / doc["manifest"]
            if not target.is_file():
                continue
            checked += 1
            m = json.loads(target.read_text(encoding="utf-8"))
            for key in ("runId", "tenantId", "finishedAt"):
                if m.get(key) != doc.get(key):
                    problems.append(f"{rec.where}: {key} {doc.get(key)!r} but its manifest says {m.get(key)!r}")
            if m.get("status") != "complete":
                problems.append(f"{rec.where}: points at a {m.get('status')!r} run; latest must only move to complete runs")
            if rec.file.stem != doc.get("tenantId"):
                problems.append(f"{rec.where}: file name is not latest/<tenantId>.json")
        _fail_list(self, problems, "latest pointers broken")
        print(f"  (latest: {checked} pointers followed to their manifest)")

    def test_scan_status_agrees_with_its_manifest(self):
        problems, checked = [], 0
        for rec in self.samples.records["scan-status"]:
            doc = rec.doc
            if not isinstance(doc, dict):
                continue
            in_layout = (rec.file.parent.parent / "runs").is_dir()  # a results root, not a flat copy
            if in_layout and rec.line is None and rec.file.stem != doc.get("runId"):
                problems.append(f"{rec.where}: file name is not scans/<runId>.json")
            if doc.get("manifest") and doc.get("resultsPrefix") and doc["manifest"] != doc["resultsPrefix"] + "/manifest.json":
                problems.append(f"{rec.where}: manifest is not resultsPrefix + /manifest.json")
            target = rec.file.parent.parent / doc["manifest"] if doc.get("manifest") else None
            if doc.get("state") not in ("complete", "partial", "failed") or target is None or not target.is_file():
                continue
            checked += 1
            m = json.loads(target.read_text(encoding="utf-8"))
            if m.get("runId") != doc.get("runId") or m.get("status") != doc.get("state"):
                problems.append(f"{rec.where}: {doc.get('state')} run {doc.get('runId')}, manifest says "
                                f"{m.get('status')} run {m.get('runId')}")
        _fail_list(self, problems, "scan statuses disagree with their manifests")
        print(f"  (scans: {checked} finished runs compared with their manifest)")

    def test_identity_records_agree_with_the_findings_beside_them(self):
        problems, checked = [], 0
        for folder, kinds in sorted(self.by_dir.items()):
            ids = Counter(r.doc.get("id") for r in kinds.get("identity", []))
            problems += [f"{folder}: identity {i} appears {n} times" for i, n in ids.items() if n > 1]
            fids = Counter(r.doc.get("findingId") for r in kinds.get("finding", []))
            problems += [f"{folder}: findingId {i} appears {n} times" for i, n in fids.items() if n > 1]
            if not (folder / "findings.ndjson").is_file():
                continue
            mine: dict[str, list[str]] = {}
            for f in kinds.get("finding", []):
                mine.setdefault(f.doc.get("identityId"), []).append(f.doc.get("severity"))
            for rec in kinds.get("identity", []):
                checked += 1
                sev = mine.get(rec.doc.get("id"), [])
                known = [x for x in sev if x in SEVERITY_ORDER]  # an unknown one already failed its schema
                highest = max(known, key=SEVERITY_ORDER.index) if known else None
                if rec.doc.get("findingCount") != len(sev) or rec.doc.get("highestSeverity") != highest:
                    problems.append(f"{rec.where}: findingCount {rec.doc.get('findingCount')} / highestSeverity "
                                    f"{rec.doc.get('highestSeverity')}, findings.ndjson says {len(sev)} / {highest}")
        _fail_list(self, problems, "identity records disagree with their findings")
        print(f"  (identities: {checked} records compared with the findings beside them)")

    def test_changes_are_consistent(self):
        problems = []
        for rec in self.samples.records["change"]:
            c = rec.doc
            if not isinstance(c, dict):
                continue
            before, after = c.get("before"), c.get("after")
            if c.get("changeType") == "severityChanged" and isinstance(before, dict) and isinstance(after, dict) \
                    and before.get("severity") == after.get("severity"):
                problems.append(f"{rec.where}: severityChanged with the same severity on both sides")
            if c.get("changeType") == "suppressionChanged" and isinstance(before, dict) and isinstance(after, dict) \
                    and before.get("suppressed") == after.get("suppressed"):
                problems.append(f"{rec.where}: suppressionChanged with the same suppression on both sides")
            manifest = rec.file.parent / "manifest.json"
            if manifest.is_file():
                m = json.loads(manifest.read_text(encoding="utf-8"))
                for key in ("runId", "tenantId"):
                    if m.get(key) != c.get(key):
                        problems.append(f"{rec.where}: {key} {c.get(key)} differs from the manifest beside it ({m.get(key)})")
                if "previousRunId" in m and m["previousRunId"] != c.get("previousRunId"):
                    problems.append(f"{rec.where}: previousRunId {c.get('previousRunId')} differs from the manifest's "
                                    f"{m['previousRunId']}")
        _fail_list(self, problems, "change records inconsistent")


if __name__ == "__main__":
    unittest.main()
