"""scripts/grant-graph-roles.sh against a fake `az` that emulates the Graph calls: idempotent, reports
what it granted and what already existed, never removes anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

import infra_common as ic

SCRIPT = ic.ROOT / "scripts" / "grant-graph-roles.sh"
MI = "11111111-2222-3333-4444-555555555555"
GRAPH_SP = "99999999-0000-0000-0000-000000000001"
ROLE_IDS = {  # Microsoft Graph app role ids (the real ones)
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "RoleManagement.Read.Directory": "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Directory.ReadWrite.All": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
}

FAKE_AZ = textwrap.dedent(r'''
    #!/usr/bin/env python3
    """Fake az: account show, functionapp identity show, rest GET/POST for the Graph calls used."""
    import json, os, sys, urllib.parse
    state_path = os.environ["FAKE_AZ_STATE"]
    state = json.load(open(state_path))
    args = sys.argv[1:]
    state["calls"].append(args)
    def opt(name):
        return args[args.index(name) + 1] if name in args else None
    def save():
        json.dump(state, open(state_path, "w"))
    if args[:2] == ["account", "show"]:
        save(); sys.exit(0)
    if args[:3] == ["functionapp", "identity", "show"]:
        save(); print(state["mi"]); sys.exit(0)
    if args[0] != "rest":
        save(); sys.exit(f"fake az: unsupported {args}")
    method, url = opt("--method"), urllib.parse.unquote(opt("--url"))
    path = url.split("/v1.0/", 1)[1]
    if method == "GET" and path.startswith("servicePrincipals(appId="):
        out = {"id": state["graph_sp"], "appRoles": [
            {"id": i, "value": v, "allowedMemberTypes": ["Application"]} for v, i in state["roles"].items()]}
    elif method == "GET" and path.startswith(f"servicePrincipals/{state['mi']}/appRoleAssignments"):
        out = {"value": [] if state.get("hide_from_listing") else state["assignments"]}
    elif method == "GET" and path.startswith(f"servicePrincipals/{state['mi']}"):
        out = {"id": state["mi"], "displayName": "func-test", "servicePrincipalType": "ManagedIdentity"}
    elif method == "GET" and path.startswith("servicePrincipals/"):
        save(); print("ERROR: Not Found", file=sys.stderr); sys.exit(3)
    elif method == "POST" and path == f"servicePrincipals/{state['graph_sp']}/appRoleAssignedTo":
        body = json.loads(opt("--body"))
        if state.get("deny_post"):
            save(); print("ERROR: Forbidden(Authorization_RequestDenied)", file=sys.stderr); sys.exit(1)
        if any((a["appRoleId"], a["resourceId"]) == (body["appRoleId"], body["resourceId"]) for a in state["assignments"]):
            save(); print("ERROR: Permission being assigned already exists", file=sys.stderr); sys.exit(1)
        out = dict(body, id=f"assignment-{len(state['assignments'])}")
        state["assignments"].append(out)
    else:
        save(); sys.exit(f"fake az: unexpected {method} {url}")
    save(); print(json.dumps(out))
''').lstrip()


@unittest.skipUnless(shutil.which("bash"), "bash needed")
class GrantScript(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        tmp = Path(self.tmp.name)
        (tmp / "bin").mkdir()
        az = tmp / "bin" / "az"
        az.write_text(FAKE_AZ.replace("#!/usr/bin/env python3", f"#!{sys.executable}", 1))
        # python3 straight to this interpreter: version-manager shims cost ~0.2 s per call.
        (tmp / "bin" / "python3").symlink_to(sys.executable)
        az.chmod(0o755)
        self.state = tmp / "state.json"
        self.write_state({"mi": MI, "graph_sp": GRAPH_SP, "roles": ROLE_IDS, "assignments": [], "calls": []})
        self.env = dict(os.environ, PATH=f"{tmp / 'bin'}:{os.environ['PATH']}", FAKE_AZ_STATE=str(self.state))
        self.env.pop("MI_ASSESS_GRAPH_ENDPOINT", None)

    def tearDown(self):
        self.tmp.cleanup()

    def write_state(self, s):
        self.state.write_text(json.dumps(s))

    def read_state(self):
        return json.loads(self.state.read_text())

    def run_script(self, *args):
        return subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=60)

    def granted_ids(self):
        return sorted(a["appRoleId"] for a in self.read_state()["assignments"])

    def test_grants_then_reports_existing(self):
        first = self.run_script("--principal-id", MI)
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        for role in ["Application.Read.All", "GroupMember.Read.All", "RoleManagement.Read.Directory", "Directory.Read.All"]:
            self.assertRegex(first.stdout, rf"(?m)^granted:\s+{role} \({ROLE_IDS[role]}\) assignment assignment-\d$")
        self.assertIn("summary: 4 granted, 0 already assigned, 0 failed", first.stdout)
        wanted = sorted(ROLE_IDS[r] for r in ["Application.Read.All", "GroupMember.Read.All", "RoleManagement.Read.Directory", "Directory.Read.All"])
        self.assertEqual(self.granted_ids(), wanted)
        for a in self.read_state()["assignments"]:
            self.assertEqual((a["principalId"], a["resourceId"]), (MI, GRAPH_SP))

        second = self.run_script("--principal-id", MI)
        self.assertEqual(second.returncode, 0, second.stdout + second.stderr)
        self.assertIn("summary: 0 granted, 4 already assigned, 0 failed", second.stdout)
        self.assertEqual(second.stdout.count("existing:"), 4)
        self.assertEqual(self.granted_ids(), wanted, "a re-run must not add anything")

    def test_partial_then_complete(self):
        s = self.read_state()
        s["assignments"] = [{"id": "pre", "principalId": MI, "resourceId": GRAPH_SP,
                             "appRoleId": ROLE_IDS["GroupMember.Read.All"]},
                            {"id": "other", "principalId": MI, "resourceId": "someone-else",
                             "appRoleId": ROLE_IDS["Application.Read.All"]}]
        self.write_state(s)
        r = self.run_script("--principal-id", MI)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("existing:  GroupMember.Read.All", r.stdout)
        self.assertIn("summary: 3 granted, 1 already assigned, 0 failed", r.stdout)

    def test_dry_run_changes_nothing(self):
        r = self.run_script("--principal-id", MI, "--dry-run")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count("would grant:"), 4)
        self.assertEqual(self.granted_ids(), [])
        self.assertFalse(any("POST" in c for c in self.read_state()["calls"]))

    def test_resolves_the_principal_from_the_app(self):
        r = self.run_script("-g", "rg", "--app", "func-test", "--roles", "GroupMember.Read.All")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"identity:  func-test ({MI}, ManagedIdentity)", r.stdout)
        self.assertEqual(self.granted_ids(), [ROLE_IDS["GroupMember.Read.All"]])

    def test_unknown_role_and_denied_grant_fail(self):
        r = self.run_script("--principal-id", MI, "--roles", "No.Such.Role")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown:   No.Such.Role", r.stdout)
        s = self.read_state()
        s["deny_post"] = True
        self.write_state(s)
        r = self.run_script("--principal-id", MI)
        self.assertEqual(r.returncode, 1)
        self.assertIn("summary: 0 granted, 0 already assigned, 4 failed", r.stdout)
        self.assertIn("Privileged Role Administrator", r.stderr)

    def test_already_exists_race_counts_as_existing(self):
        # Assigned by someone else between the listing and the POST: Graph answers "already exists".
        s = self.read_state()
        s["hide_from_listing"] = True
        s["assignments"] = [{"id": "pre", "principalId": MI, "resourceId": GRAPH_SP,
                             "appRoleId": ROLE_IDS["GroupMember.Read.All"]}]
        self.write_state(s)
        r = self.run_script("--principal-id", MI)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("summary: 3 granted, 1 already assigned, 0 failed", r.stdout)

    def test_rejects_a_non_guid_principal(self):
        r = self.run_script("--principal-id", "x'); import os #")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("must be an object id", r.stderr)

    def test_list(self):
        self.run_script("--principal-id", MI, "--roles", "RoleManagement.Read.Directory")
        r = self.run_script("--principal-id", MI, "--list")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"RoleManagement.Read.Directory ({ROLE_IDS['RoleManagement.Read.Directory']})", r.stdout)


if __name__ == "__main__":
    unittest.main()
