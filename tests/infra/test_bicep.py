"""Bicep files: parse with pycep-parser 0.7.1, and the least-privilege / no-secret properties that checkov
does not check (it has no checks for role assignments, App Insights or the Graph extension)."""

from __future__ import annotations

import json
import re
import unittest

import infra_common as ic

EXPECTED_FILES = {
    "main.bicep",
    "modules/function-app.bicep",
    "modules/graph-app-roles.bicep",
    "modules/monitoring.bicep",
    "modules/rbac.bicep",
    "modules/storage.bicep",
    "modules/usage-reader.bicep",
    "mg/mg-reader.bicep",
}
ROLE = {
    "blobOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "blobContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "queueContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "metricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
LOG_ANALYTICS_READER = "73c42c96-874c-492b-b04d-ab87d138a893"
GRAPH_ROLES = ["Application.Read.All", "GroupMember.Read.All", "RoleManagement.Read.Directory", "Directory.Read.All"]


def code(rel: str) -> str:
    return ic.bicep_code(ic.INFRA / rel)


class Parse(unittest.TestCase):
    def test_expected_files(self):
        found = {str(p.relative_to(ic.INFRA)) for p in ic.bicep_files()}
        self.assertEqual(found, EXPECTED_FILES)

    def test_every_file_parses_with_pycep(self):
        try:
            from pycep import BicepParser  # pycep-parser==0.7.1, installed by scripts/validate-infra.sh
        except ImportError:
            ic.cannot_check(self, "pycep-parser is not installed (scripts/validate-infra.sh installs it)")
        parser = BicepParser()
        for f in ic.bicep_files():
            with self.subTest(file=str(f.relative_to(ic.ROOT))):
                try:
                    tree = parser.parse(text=ic.read(f))
                except Exception as e:  # noqa: BLE001 - report any parser error as a failure
                    self.fail(f"{f.relative_to(ic.ROOT)}: {str(e).splitlines()[0]}")
                self.assertIsInstance(tree, dict)

    def test_graph_extension_alias_is_configured(self):
        config = json.loads(ic.read(ic.INFRA / "bicepconfig.json"))
        for f in ic.bicep_files():
            for alias in re.findall(r"(?m)^extension\s+(\w+)\s*$", ic.bicep_code(f)):
                self.assertIn(alias, config.get("extensions", {}), f"{f.name}: extension {alias} not in bicepconfig.json")
                self.assertRegex(config["extensions"][alias], r"^br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:1\.\d+\.\d+$")


class Security(unittest.TestCase):
    def test_no_keys_secrets_or_connection_strings(self):
        forbidden = [r"listKeys\(", r"listAccountSas\(", r"listServiceSas\(", r"AccountKey=", r"SharedAccessSignature",
                     r"@secure\(", r"DefaultEndpointsProtocol", r"\bAzureWebJobsStorage\s*:"]
        for f in ic.bicep_files():
            text = ic.bicep_code(f)
            for pattern in forbidden:
                self.assertNotRegex(text, pattern, f"{f.relative_to(ic.ROOT)} contains {pattern}")

    def test_no_deprecated_flex_settings(self):
        # Replaced by functionAppConfig on Flex Consumption; setting them breaks or confuses deployments.
        for f in ic.bicep_files():
            for name in ["FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                         "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "linuxFxVersion"]:
                self.assertNotIn(name, ic.bicep_code(f), f"{f.name} sets {name}")

    def test_storage_is_entra_only(self):
        storage = code("modules/storage.bicep")
        for prop in ["allowSharedKeyAccess: false", "allowBlobPublicAccess: false", "minimumTlsVersion: 'TLS1_2'",
                     "supportsHttpsTrafficOnly: true", "defaultToOAuthAuthentication: true",
                     "allowCrossTenantReplication: false", "publicAccess: 'None'"]:
            self.assertIn(prop, storage)

    def test_two_storage_accounts(self):
        main = code("main.bicep")
        self.assertEqual(len(re.findall(r"(?m)^module\s+\w+\s+'modules/storage\.bicep'", main)), 2)

    def test_app_insights_entra_only(self):
        self.assertIn("DisableLocalAuth: true", code("modules/monitoring.bicep"))
        app = code("modules/function-app.bicep")
        self.assertIn("APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'", app)
        self.assertIn("AzureWebJobsStorage__credential: 'managedidentity'", app)
        self.assertIn("authentication: { type: 'SystemAssignedIdentity' }", app)

    def test_basic_publishing_credentials_disabled(self):
        app = code("modules/function-app.bicep")
        self.assertRegex(app, r"basicPublishingCredentialsPolicies@[\d-]+' = \[\s*for n in \['scm', 'ftp'\]")
        self.assertIn("properties: { allow: false }", app)

    def test_every_checkov_skip_has_a_reason(self):
        for f in ic.bicep_files():
            for line in ic.read(f).splitlines():
                if "checkov:skip" in line:
                    m = re.search(r"//\s*checkov:skip=(CKV2?_[A-Z]+_\d+):\s*(.*)$", line)
                    self.assertTrue(m, f"{f.name}: malformed skip {line.strip()!r}")
                    self.assertGreaterEqual(len(m.group(2).strip()), 20, f"{f.name}: {m.group(1)} needs a reason")


class Hosting(unittest.TestCase):
    def test_flex_consumption_linux_custom_handler(self):
        app = code("modules/function-app.bicep")
        self.assertIn("sku: { name: 'FC1', tier: 'FlexConsumption' }", app)
        self.assertIn("properties: { reserved: true }", app)
        self.assertIn("kind: 'functionapp,linux'", app)
        self.assertIn("httpsOnly: true", app)
        self.assertIn("runtime: { name: runtimeName, version: runtimeVersion }", app)
        for f in ["modules/function-app.bicep", "main.bicep"]:
            params = ic.bicep_params(code(f))
            self.assertEqual(ic.bicep_string_literal(params["runtimeName"]["default"]), "custom", f)
            self.assertEqual(ic.bicep_string_literal(params["runtimeVersion"]["default"]), "1.0", f)

    def test_system_assigned_identity(self):
        app = code("modules/function-app.bicep")
        self.assertIn("type: empty(userAssignedIdentityResourceId) ? 'SystemAssigned' : 'SystemAssigned, UserAssigned'", app)

    def test_every_main_parameter_is_documented(self):
        for rel in ["main.bicep", "mg/mg-reader.bicep"]:
            for name, p in ic.bicep_params(code(rel)).items():
                self.assertTrue(p["description"], f"{rel}: param {name} has no @description")

    def test_azd_parameters_exist_in_main(self):
        params = ic.bicep_params(code("main.bicep"))
        azd = json.loads(ic.read(ic.INFRA / "main.parameters.json"))["parameters"]
        self.assertEqual(set(azd) - set(params), set(), "main.parameters.json names unknown parameters")
        required = {n for n, p in params.items() if p["default"] is None}
        self.assertEqual(required - set(azd), set(), "azd must supply every parameter without a default")

    def test_outputs(self):
        main = code("main.bicep")
        for out in ["functionAppName", "resultsUrl", "principalId"]:
            self.assertRegex(main, rf"(?m)^output {out} string = ")


class Permissions(unittest.TestCase):
    def test_role_definition_ids(self):
        rbac = code("modules/rbac.bicep")
        for var, guid in ROLE.items():
            self.assertIn(f"var {var} = '{guid}'", rbac)
        # Nothing broader than data-plane roles: no Owner/Contributor/User Access Administrator.
        for broad in ["8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c",
                      "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"]:
            for f in ic.bicep_files():
                self.assertNotIn(broad, ic.bicep_code(f), f.name)

    def _assignment(self, rbac: str, symbol: str) -> str:
        m = re.search(rf"(?m)^resource {symbol} 'Microsoft\.Authorization/roleAssignments@[\d-]+' = ", rbac)
        self.assertTrue(m, f"role assignment {symbol}")
        return ic.brace_block(rbac, m.end())

    def test_scopes_are_narrow(self):
        rbac = code("modules/rbac.bicep")
        owner = self._assignment(rbac, "hostBlobOwner")
        self.assertIn("scope: hostSa\n", owner)
        self.assertIn("blobOwner", owner)
        self.assertIn("principalId: hostPrincipalId", owner)
        results = self._assignment(rbac, "resultsContributor")
        self.assertIn("scope: dataSa::blobService::results", results)  # the container, not the account
        self.assertIn("principalId: scannerPrincipalId", results)
        queue = self._assignment(rbac, "scanQueueContributor")
        self.assertIn("scope: scanQueues[i]", queue)  # each scan queue, not the account
        self.assertIn("queueContributor", queue)
        telemetry = self._assignment(rbac, "telemetry")
        self.assertIn("scope: appi\n", telemetry)
        self.assertIn("metricsPublisher", telemetry)
        self.assertEqual(len(re.findall(r"roleAssignments@", rbac)), 4)

    def test_graph_app_roles_are_read_only_and_switchable(self):
        main = code("main.bicep")
        params = ic.bicep_params(main)
        self.assertEqual(params["grantGraphAppRoles"]["type"], "bool")
        block = re.search(r"(?ms)^param graphAppRoles array = \[(.*?)\]", main).group(1)
        self.assertEqual(re.findall(r"'([^']+)'", block), GRAPH_ROLES)
        self.assertRegex(main, r"module graph 'modules/graph-app-roles\.bicep' = if \(grantGraphAppRoles\)")
        graph = code("modules/graph-app-roles.bicep")
        self.assertIn("appId: '00000003-0000-0000-c000-000000000000'", graph)
        self.assertIn("Microsoft.Graph/appRoleAssignedTo@v1.0", graph)
        self.assertIn("contains(r.allowedMemberTypes, 'Application')", graph)
        script = ic.read(ic.ROOT / "scripts" / "grant-graph-roles.sh")
        self.assertIn('ROLES="' + ",".join(GRAPH_ROLES) + '"', script)

    def test_usage_reader_is_optional_and_scoped_to_the_workspace(self):
        usage = code("modules/usage-reader.bicep")
        self.assertIn(f"var logAnalyticsReader = '{LOG_ANALYTICS_READER}'", usage)
        reader = self._assignment(usage, "reader")
        self.assertIn("scope: workspace\n", reader)  # the workspace, not its resource group
        self.assertIn("principalId: scannerPrincipalId", reader)
        self.assertEqual(len(re.findall(r"roleAssignments@", usage)), 1)
        self.assertRegex(code("main.bicep"),
                         r"module usageReader 'modules/usage-reader\.bicep' = if \(!empty\(logAnalyticsWorkspaceResourceId\)\)")

    def test_management_group_reader_is_separate(self):
        mg = code("mg/mg-reader.bicep")
        self.assertIn("targetScope = 'managementGroup'", mg)
        self.assertIn(READER, mg)
        self.assertIsNone(re.search(r"module\s+\w+\s+'mg/", code("main.bicep")), "MG scope is its own deployment")


if __name__ == "__main__":
    unittest.main()
