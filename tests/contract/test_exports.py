"""Contract tests on the exports every run writes beside findings.ndjson.

Owns: findings.ocsf.json validates event by event with py-ocsf-models (the OCSF models Prowler
uses: pydantic, strict JSON mode, unknown keys forbidden so a misspelled field fails instead of
being dropped), plus the OCSF rules the models default or leave loose (class and category ids,
type_uid = class_uid * 100 + activity_id, metadata.version, epoch-millisecond times); each event's
finding_info.uid is a findingId of the findings.ndjson beside it, one event per finding, with its
severity and suppression. findings.csv is read back with DuckDB (read_csv, RFC 4180): one row per
finding, the same findingIds, severities and statuses, and every column named in the header.
"""

from __future__ import annotations

import json
import unittest
from pathlib import Path

import duckdb
from pydantic import ValidationError
from py_ocsf_models import OCSF_VERSION
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

import contract_common as cc

SEVERITY_IDS = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
CSV_COLUMNS = [
    "findingId", "ruleId", "severity", "title", "status", "change", "identityId", "identityName",
    "identityKind", "tier", "resourceId", "resourceType", "subscriptionId", "resourceGroup",
    "remediation", "remediationCommands", "suppressionReason", "suppressionExpires", "suppressionScope",
    "suppressionApprovedBy", "evidence", "tenantId", "runId", "detectedAt",
]


def findings_beside(path: Path) -> dict[str, dict]:
    return {f["findingId"]: f for f in map(json.loads, cc.ndjson_lines(path.parent / "findings.ndjson"))}


def ocsf_problems(event: dict) -> list[str]:
    """What py-ocsf-models rejects, and what OCSF requires that the models would default."""
    problems = []
    try:
        DetectionFinding.model_validate_json(json.dumps(event), strict=True, extra="forbid")
    except ValidationError as e:
        problems += [f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
    for key in ("class_uid", "category_uid", "activity_id", "type_uid", "time", "severity_id"):
        if key not in event:
            problems.append(f"{key}: missing")
    if event.get("class_uid") != 2004 or event.get("category_uid") != 2:
        problems.append("not a Detection Finding (class 2004, category 2)")
    if event.get("type_uid") != 2004 * 100 + event.get("activity_id", -1):
        problems.append("type_uid is not class_uid * 100 + activity_id")
    if event.get("metadata", {}).get("version") != OCSF_VERSION:
        problems.append(f"metadata.version is not {OCSF_VERSION}")
    if not isinstance(event.get("time"), int) or not 10**12 <= event["time"] < 10**14:
        problems.append("time is not epoch milliseconds")
    return problems


class OcsfExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.samples = cc.load_samples()

    def test_every_event_validates_and_matches_its_finding(self):
        files = self.samples.ocsf_exports
        self.assertTrue(files, "no findings.ocsf.json among the samples")
        checked = 0
        for path in files:
            events = json.loads(path.read_text(encoding="utf-8"))
            self.assertIsInstance(events, list, path)
            findings = findings_beside(path)
            self.assertEqual(len(events), len(findings), f"{path}: one event per finding")
            for i, event in enumerate(events):
                problems = ocsf_problems(event)
                self.assertFalse(problems, f"{path} event {i}: {problems[:10]}")
                finding = findings.get(event["finding_info"]["uid"])
                self.assertIsNotNone(finding, f"{path} event {i}: finding_info.uid is no findingId")
                self.assertEqual(event["severity_id"], SEVERITY_IDS[finding["severity"]], path)
                self.assertEqual(event["status_id"], 3 if finding["suppressed"] else 1, path)
                self.assertEqual(event["metadata"]["event_code"], finding["ruleId"], path)
                self.assertEqual(event["resources"][0]["uid"], finding["identityId"], path)
                self.assertEqual(event["remediation"]["desc"], finding["remediation"], path)
                checked += 1
        print(f"  (ocsf: {checked} events in {len(files)} files validated with py-ocsf-models, OCSF {OCSF_VERSION})")

    def test_the_validation_fails_on_a_broken_event(self):
        path = self.samples.ocsf_exports[0]
        event = json.loads(path.read_text(encoding="utf-8"))[0]
        for broken in (
            {k: v for k, v in event.items() if k != "severity_id"},
            {**event, "finding_info": {**event["finding_info"], "rule": "unknown key"}},
            {**event, "type_uid": 200_409},
            {**event, "time": event["time"] // 1000},
        ):
            self.assertTrue(ocsf_problems(broken), broken)


class CsvExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.samples = cc.load_samples()

    def test_duckdb_reads_one_row_per_finding(self):
        files = self.samples.csv_exports
        self.assertTrue(files, "no findings.csv among the samples")
        rows_read = 0
        for path in files:
            con = duckdb.connect()
            # Every column as text, so nothing is guessed; RFC 4180 quoting, a header row.
            rel = con.read_csv(str(path), header=True, all_varchar=True, quotechar='"', escapechar='"', delimiter=",")
            self.assertEqual(rel.columns, CSV_COLUMNS, path)
            rows = rel.fetchall()
            findings = findings_beside(path)
            self.assertEqual(len(rows), len(findings), f"{path}: one row per finding")
            for row in rows:
                record = dict(zip(CSV_COLUMNS, row))
                finding = findings[record["findingId"]]
                self.assertEqual(record["severity"], finding["severity"], path)
                self.assertEqual(record["status"], "suppressed" if finding["suppressed"] else "active", path)
                self.assertEqual(json.loads(record["evidence"]), finding["evidence"], path)
                self.assertEqual(record["remediation"].lstrip("'"), finding["remediation"], path)
                rows_read += 1
        print(f"  (csv: {rows_read} rows in {len(files)} files read back with DuckDB {duckdb.__version__})")


if __name__ == "__main__":
    unittest.main()
