"""Contract tests on the schemas themselves (schemas/*.schema.json and schemas/README.md).

Owns: every schema is valid draft 2020-12, has $id/title/description, requires schemaVersion with a
major-1 pattern (except the suppressions input file, which cannot carry one), names the version in
its $id that schemas/README.md lists, and shares the same enums with the other schemas; the format
checker really asserts date-time and uuid.
"""

from __future__ import annotations

import json
import re
import unittest

from jsonschema import Draft202012Validator

import contract_common as cc

ID_PATTERN = re.compile(r"^https://mi-assess\.dev/schemas/(?P<name>[a-z-]+)/(?P<version>\d+\.\d+\.\d+)$")


class SchemaFiles(unittest.TestCase):
    def test_every_schema_is_valid_draft_2020_12(self):
        on_disk = sorted(p.name for p in cc.SCHEMAS.glob("*.schema.json"))
        self.assertEqual(on_disk, sorted(cc.SCHEMA_FILES.values()), "schemas/ and the suite disagree on the files")
        for kind in cc.KINDS:
            with self.subTest(kind=kind):
                s = cc.schema(kind)
                Draft202012Validator.check_schema(s)
                self.assertEqual(s.get("$schema"), "https://json-schema.org/draft/2020-12/schema")
                m = ID_PATTERN.match(s.get("$id", ""))
                self.assertIsNotNone(m, f"$id {s.get('$id')!r} is not https://mi-assess.dev/schemas/<name>/<semver>")
                self.assertEqual(m["name"], cc.SCHEMA_FILES[kind].removesuffix(".schema.json"))
                self.assertTrue(s.get("title"), "title missing")
                self.assertTrue(s.get("description"), "description missing")
                self.assertEqual(s.get("type"), "object")

    def test_schema_version_is_required_with_major_1(self):
        for kind in cc.VERSIONED_KINDS:
            with self.subTest(kind=kind):
                s = cc.schema(kind)
                self.assertIn("schemaVersion", s.get("required", []))
                prop = s["properties"]["schemaVersion"]
                self.assertEqual(prop.get("type"), "string")
                self.assertTrue(
                    prop.get("pattern") == r"^1\.\d+\.\d+$" or re.fullmatch(r"1\.\d+\.\d+", str(prop.get("const", ""))),
                    f"schemaVersion must be const 1.x.y or pattern ^1\\.\\d+\\.\\d+$, not {prop}",
                )
                v = cc.validator(kind)
                self.assertFalse(v.is_valid({**_minimal(kind), "schemaVersion": "2.0.0"}), "a 2.x record must not validate")
                self.assertTrue(v.is_valid({**_minimal(kind), "schemaVersion": "1.7.3"}), "a later 1.x record must validate")
        # The exception, and why: suppressions.json is parsed with deny_unknown_fields.
        s = cc.schema("suppressions")
        self.assertNotIn("schemaVersion", s.get("properties", {}))
        self.assertIs(s.get("additionalProperties"), False)

    def test_readme_lists_every_schema_with_its_version(self):
        readme = (cc.SCHEMAS / "README.md").read_text(encoding="utf-8")
        for kind in cc.KINDS:
            with self.subTest(kind=kind):
                row = re.search(r"^\|[^\n]*?\|\s*`" + re.escape(cc.SCHEMA_FILES[kind]) + r"`\s*\|\s*`?([0-9.]+)`?\s*\|",
                                readme, re.M)
                self.assertIsNotNone(row, f"schemas/README.md has no table row for {cc.SCHEMA_FILES[kind]}")
                self.assertEqual(row.group(1), cc.schema_version(kind), "README version differs from $id")

    def test_shared_enums_agree(self):
        severity = ["info", "low", "medium", "high", "critical"]
        tiers = ["userAccess", "managementPlane", "controlPlane"]
        triggers = ["timer", "http", "cli", "demo", "replay"]
        self.assertEqual(cc.schema("finding")["$defs"]["severity"]["enum"], severity)
        self.assertEqual(cc.schema("identity")["$defs"]["severityOrNull"]["enum"], severity + [None])
        self.assertEqual(cc.schema("change")["$defs"]["findingState"]["properties"]["severity"]["enum"], severity)
        self.assertEqual(cc.schema("identity")["$defs"]["tier"]["enum"], tiers)
        self.assertEqual(cc.schema("identity")["$defs"]["tierOrNull"]["enum"], tiers + [None])
        self.assertEqual(cc.schema("finding")["properties"]["tier"]["enum"], tiers + [None])
        self.assertEqual(cc.schema("manifest")["$defs"]["trigger"]["enum"], triggers)
        self.assertEqual(cc.schema("scan-status")["properties"]["trigger"]["enum"], triggers)
        self.assertEqual(cc.schema("identity")["$defs"]["identityKind"]["enum"], ["systemAssigned", "userAssigned"])
        self.assertEqual(cc.schema("finding")["properties"]["identityKind"]["enum"],
                         ["systemAssigned", "userAssigned", "servicePrincipal"])
        # The GUID and date-time definitions are copied into each file; keep the copies identical.
        for name in ("guid", "dateTime"):
            copies = {json.dumps(cc.schema(k)["$defs"][name], sort_keys=True) for k in cc.KINDS
                      if name in cc.schema(k).get("$defs", {})}
            self.assertEqual(len(copies), 1, f"$defs/{name} differs between schema files")

    def test_format_checker_asserts_date_time_and_uuid(self):
        checker = cc.format_checker()
        for good in ("2026-11-27T14:12:24.063844995Z", "2026-01-01T00:00:00Z", "2026-03-07T10:00:00+01:00"):
            self.assertTrue(checker.conforms(good, "date-time"), good)
        for bad in ("2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01 00:00:00Z", "yesterday", "2026-01-01T00:00:00"):
            self.assertFalse(checker.conforms(bad, "date-time"), bad)
        self.assertTrue(checker.conforms("6d692d61-7373-6573-735f-66696e64696e", "uuid"))
        self.assertFalse(checker.conforms("ara08-demo-assignment-0b1e6f7a", "uuid"))
        # and the validators use it
        finding = _minimal("finding")
        self.assertTrue(cc.validator("finding").is_valid(finding))
        self.assertFalse(cc.validator("finding").is_valid({**finding, "findingId": "not-a-guid"}))
        self.assertFalse(cc.validator("change").is_valid({**_minimal("change"), "detectedAt": "2026-02-30T00:00:00Z"}))

    def test_schemas_reject_what_the_producer_never_writes(self):
        v = cc.validator
        f = _minimal("finding")
        self.assertFalse(v("finding").is_valid({**f, "suppressed": True}), "suppressed without suppression")
        self.assertFalse(v("finding").is_valid({**f, "suppression": {"reason": "r", "expires": "2027-01-01T00:00:00Z"}}),
                         "suppression on an unsuppressed finding")
        self.assertFalse(v("finding").is_valid({**f, "severity": "severe"}))
        c = _minimal("change")
        self.assertFalse(v("change").is_valid({**c, "before": {"severity": "low", "suppressed": False}}), "new with before")
        self.assertFalse(v("change").is_valid({**c, "changeType": "resolved"}), "resolved without before")
        self.assertFalse(v("change").is_valid({**c, "changeType": "resolved", "before": c["after"], "after": None}),
                         "resolved without a previous run")
        i = _minimal("identity")
        self.assertFalse(v("identity").is_valid({k: x for k, x in i.items() if k != "appRoles"}), "null lists must not be dropped")
        self.assertTrue(v("identity").is_valid({**i, "appRoles": None, "unknown": ["appRoleAssignments"]}))
        m = _minimal("manifest")
        self.assertTrue(v("manifest").is_valid({**m, "tenantId": ""}), "failed before the tenant was known")
        self.assertFalse(v("manifest").is_valid({**m, "status": "running"}), "a manifest is only written finished")
        s = {"suppressions": [{"ruleId": "MI-GRAPH-002", "identityId": i["id"], "reason": "r", "expires": "2027-01-01T00:00:00Z"}]}
        self.assertTrue(v("suppressions").is_valid(s))
        self.assertFalse(v("suppressions").is_valid({**s, "schemaVersion": "1.0.0"}), "deny_unknown_fields")
        self.assertFalse(v("suppressions").is_valid({"suppressions": [{**s["suppressions"][0], "reason": "  "}]}))


def _minimal(kind: str) -> dict:
    """A minimal valid document of each kind, built from the wire formats."""
    guid = "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01"
    run = "9a1724f7-cad8-446d-8533-84860b8bc1c4"
    t = "2026-11-27T14:12:24.063844995Z"
    prefix = f"runs/{guid}/2026/11/27/{run}"
    docs = {
        "identity": {
            "schemaVersion": "1.0.0", "id": guid, "appId": None, "displayName": None, "kind": "userAssigned",
            "accountEnabled": None, "resourceId": None, "subscriptionId": None, "resourceGroup": None,
            "resourceType": None, "resourceName": None, "tier": None, "appRoles": [], "groups": [],
            "directoryRoles": [], "delegatedGrants": [], "unknown": [], "findingCount": 0, "highestSeverity": None,
        },
        "finding": {
            "schemaVersion": "1.0.0", "findingId": run, "ruleId": "MI-GRAPH-001", "severity": "critical", "title": "t",
            "identityId": guid, "identityName": "n", "identityKind": "systemAssigned", "tier": "controlPlane",
            "evidence": {}, "remediation": "r", "suppressed": False,
        },
        "change": {
            "schemaVersion": "1.0.0", "changeType": "new", "findingId": run, "ruleId": "MI-GRAPH-001",
            "identityId": guid, "identityName": "n", "title": "t", "before": None,
            "after": {"severity": "high", "suppressed": False}, "tenantId": guid, "runId": run, "detectedAt": t,
            "previousRunId": None, "previousRunAt": None,
        },
        "manifest": {
            "schemaVersion": "1.0.0", "tenantId": guid, "runId": run, "trigger": "demo", "startedAt": t,
            "finishedAt": t, "status": "complete",
            "counts": {"identities": 0, "systemAssigned": 0, "userAssigned": 0, "credentialServicePrincipals": None,
                       "findings": 0, "findingsBySeverity": {"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0},
                       "suppressed": 0, "changes": {"new": 0, "resolved": 0, "severityChanged": 0}},
            "graph": {"requests": 0, "resourceUnits": 0, "throttled": 0, "retries": 0},
            "files": [], "errors": [], "skipped": [], "warnings": [], "previousRunId": None, "toolVersion": "0.1.0",
        },
        "latest": {"schemaVersion": "1.0.0", "tenantId": guid, "runId": run, "prefix": prefix,
                   "manifest": prefix + "/manifest.json", "finishedAt": t},
        "scan-status": {"schemaVersion": "1.0.0", "runId": run, "state": "queued", "trigger": "http",
                        "requestedAt": t, "updatedAt": t},
        "cli-summary": {"schemaVersion": "1.0.0", "runId": run, "tenantId": guid, "status": "complete", "exitCode": 0,
                        "results": prefix, "report": None, "counts": {},
                        "graph": {"requests": 0, "resourceUnits": 0, "throttled": 0, "retries": 0}, "gate": None,
                        "warnings": [], "errors": [], "skipped": [], "topFindings": []},
    }
    return docs[kind]


if __name__ == "__main__":
    unittest.main()
