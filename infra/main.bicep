// mi-assess: Azure Functions (Flex Consumption, custom handler) that assesses every managed identity of an
// Entra ID tenant with its own managed identity and writes the results to a private blob container.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p environmentName=<name>
//   (or `azd up`, which reads infra/main.parameters.json)
//
// Nothing here creates a key, secret, SAS or connection string: storage accounts reject shared keys,
// Application Insights rejects instrumentation-key ingestion, and publishing credentials are disabled.
targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------------
// Naming and placement
// ---------------------------------------------------------------------------------------------------------

@description('Environment name (azd: AZURE_ENV_NAME). Names every resource; letters, digits and hyphens.')
@minLength(2)
@maxLength(32)
param environmentName string

@description('Azure region of every resource. Must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Extra tags for every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------------------
// Settings read by the handler (each becomes one MI_ASSESS_* app setting)
// ---------------------------------------------------------------------------------------------------------

@description('MI_ASSESS_SCHEDULE: 6-field NCRONTAB ({second} {minute} {hour} {day} {month} {day-of-week}, UTC) of the nightly assessment.')
param schedule string = '0 0 2 * * *'

@description('MI_ASSESS_GRAPH_ENDPOINT: Microsoft Graph root. US Gov: https://graph.microsoft.us, DoD: https://dod-graph.microsoft.us, China (21Vianet): https://microsoftgraph.chinacloudapi.cn.')
param graphEndpoint string = 'https://graph.microsoft.com'

@description('MI_ASSESS_ARM_ENDPOINT: Azure Resource Manager root for the Azure-plane assessment (token scope {endpoint}/.default). US Gov: https://management.usgovcloudapi.net, China (21Vianet): https://management.chinacloudapi.cn.')
param armEndpoint string = 'https://management.azure.com'

@description('MI_ASSESS_AZURE_PLANE: required (ARM access is expected: without it runs are partial), optional (read Azure when the scanner has Reader; without it runs stay complete and the manifest lists the Azure plane as skipped) or off (never call ARM). Set required once infra/mg/mg-reader.bicep is deployed.')
@allowed(['required', 'optional', 'off'])
param azurePlane string = 'optional'

@description('MI_ASSESS_PRIVILEGED_GROUPS: comma-separated object ids of groups whose members count as privileged (empty: none).')
param privilegedGroupIds string = ''

@description('MI_ASSESS_FIC_ALLOWED_ISSUERS: comma-separated federated-credential issuer URLs treated as trusted (empty: GitHub Actions, AWS Cognito and Google, the issuer types of the Azure Policy built-in federated-credential initiative). The OIDC issuers of AKS clusters in the tenant are always trusted.')
param ficAllowedIssuers string = ''

@description('MI_ASSESS_LOG: tracing filter, e.g. info, debug, mi_assess=debug,info.')
param logFilter string = 'info'

@description('MI_ASSESS_RUN_TIMEOUT: the longest a run may take (hh:mm:ss or seconds) before it stops itself, writes a failed manifest with reason deadline and releases the tenant lock. Keep it under host.json functionTimeout (00:30:00).')
param runTimeout string = '00:28:00'

@description('MI_ASSESS_IDENTITY_TIMEOUT: seconds GET /api/identities/{objectId} may work before it answers 504 (at most 60).')
param identityTimeout string = '60'

@description('MI_ASSESS_MAX_RESPONSE_MB: the largest Graph or ARM response body read, in MiB (checked as it streams in).')
param maxResponseMb string = '64'

@description('MI_ASSESS_MAX_PAGES: the most pages one Graph or ARM listing follows before it is an error.')
param maxPages string = '100000'

@description('MI_ASSESS_MAX_SECRET_DAYS: longest client-secret validity, in days, before SP-CRED-002 calls it long-lived.')
param maxSecretDays string = '180'

@description('MI_ASSESS_MAX_CERTIFICATE_DAYS: longest certificate validity, in days, before SP-CRED-002 calls it long-lived.')
param maxCertificateDays string = '365'

@description('MI_ASSESS_SUPPRESSION_MAX_DAYS: longest acceptance in suppressions.json, in days from the run; an entry that expires later is skipped.')
param suppressionMaxDays string = '365'

@description('MI_ASSESS_LOG_ANALYTICS_WORKSPACE_ID: the workspace id (customer id, a GUID) whose logs show what each identity used; empty: the usage plane is off.')
param logAnalyticsWorkspaceId string = ''

@description('MI_ASSESS_USAGE_WINDOW_DAYS: days of logs the usage plane reads (at most 730, and at most what the workspace keeps).')
param usageWindowDays string = '30'

@description('MI_ASSESS_LOG_ANALYTICS_ENDPOINT: the Log Analytics query API (https://api.loganalytics.us in US Government, https://api.loganalytics.azure.cn in China).')
param logAnalyticsEndpoint string = 'https://api.loganalytics.azure.com'

@description('Resource id of that workspace; when set, the scanner identity gets Log Analytics Reader on it.')
param logAnalyticsWorkspaceResourceId string = ''

@description('Resource id of an existing user-assigned identity to scan and write results with (empty: the app\'s system-assigned identity). Sets MI_ASSESS_IDENTITY_CLIENT_ID to its client id; results and Graph roles then go to that identity.')
param userAssignedIdentityResourceId string = ''

// ---------------------------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------------------------

@description('Grant the Graph app roles below with the Microsoft Graph Bicep extension. Needs Privileged Role Administrator (or AppRoleAssignment.ReadWrite.All + Application.Read.All); set false and run scripts/grant-graph-roles.sh otherwise.')
param grantGraphAppRoles bool = true

@description('Microsoft Graph application permissions for the scanner identity (read-only). Directory.Read.All is the only permission Graph documents for reading delegated permission grants; without it runs are partial (grants unknown).')
param graphAppRoles array = [
  'Application.Read.All'
  'GroupMember.Read.All'
  'RoleManagement.Read.Directory'
  'Directory.Read.All'
]

// ---------------------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------------------

@description('Flex Consumption instance memory in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Flex Consumption scale-out limit.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('functionAppConfig.runtime.name: custom (default) or a carrier stack if ARM rejects custom; see modules/function-app.bicep.')
@allowed(['custom', 'python', 'node'])
param runtimeName string = 'custom'

@description('functionAppConfig.runtime.version (custom: 1.0, python: 3.12, node: 22).')
param runtimeVersion string = '1.0'

@description('Storage redundancy of both accounts.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param storageSkuName string = 'Standard_LRS'

@description('Private container for assessment results.')
@minLength(3)
@maxLength(63)
param resultsContainerName string = 'results'

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

// ---------------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var slug = toLower(replace(replace(environmentName, '-', ''), '_', ''))
var baseName = '${toLower(environmentName)}-${token}'
var allTags = union(tags, { 'azd-env-name': environmentName, application: 'mi-assess' })
var deploymentContainerName = 'app-package-${take(token, 8)}'
// Must equal queueName in functions/scans/function.json and functions/scan-worker/function.json.
var scanQueueName = 'mi-assess-scans'
var useUserAssignedIdentity = !empty(userAssignedIdentityResourceId)

// ---------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------

module monitoring 'modules/monitoring.bicep' = {
  name: 'mi-assess-monitoring'
  params: {
    location: location
    name: baseName
    tags: allTags
    retentionInDays: logRetentionInDays
  }
}

// AzureWebJobsStorage (host leases, keys, timer schedule monitor, scan queue) + Flex package container.
module hostStorage 'modules/storage.bicep' = {
  name: 'mi-assess-host-storage'
  params: {
    location: location
    name: take('sth${token}${slug}', 24)
    tags: allTags
    skuName: storageSkuName
    containerNames: [deploymentContainerName]
    queueNames: [scanQueueName, '${scanQueueName}-poison']
  }
}

// Results only, so the scanner's write right can be scoped to one container of its own account.
module dataStorage 'modules/storage.bicep' = {
  name: 'mi-assess-results-storage'
  params: {
    location: location
    name: take('std${token}${slug}', 24)
    tags: allTags
    skuName: storageSkuName
    containerNames: [resultsContainerName]
  }
}

// primaryEndpoints.blob ends with '/': the URL below has no trailing slash.
var resultsUrl = '${dataStorage.outputs.blobEndpoint}${resultsContainerName}'

// Every setting the handler reads. tests/infra/test_app_settings_drift.py keeps this list equal to the
// MI_ASSESS_* names used in src/ and in functions/*/function.json.
var miAssessSettings = {
  MI_ASSESS_SCHEDULE: schedule
  MI_ASSESS_GRAPH_ENDPOINT: graphEndpoint
  MI_ASSESS_ARM_ENDPOINT: armEndpoint
  MI_ASSESS_AZURE_PLANE: azurePlane
  MI_ASSESS_RESULTS_URL: resultsUrl
  MI_ASSESS_IDENTITY_CLIENT_ID: useUserAssignedIdentity ? reference(userAssignedIdentityResourceId, '2023-01-31').clientId : ''
  MI_ASSESS_PRIVILEGED_GROUPS: privilegedGroupIds
  MI_ASSESS_FIC_ALLOWED_ISSUERS: ficAllowedIssuers
  MI_ASSESS_LOG: logFilter
  MI_ASSESS_RUN_TIMEOUT: runTimeout
  MI_ASSESS_IDENTITY_TIMEOUT: identityTimeout
  MI_ASSESS_MAX_RESPONSE_MB: maxResponseMb
  MI_ASSESS_MAX_PAGES: maxPages
  MI_ASSESS_MAX_SECRET_DAYS: maxSecretDays
  MI_ASSESS_MAX_CERTIFICATE_DAYS: maxCertificateDays
  MI_ASSESS_SUPPRESSION_MAX_DAYS: suppressionMaxDays
  MI_ASSESS_LOG_ANALYTICS_WORKSPACE_ID: logAnalyticsWorkspaceId
  MI_ASSESS_USAGE_WINDOW_DAYS: usageWindowDays
  MI_ASSESS_LOG_ANALYTICS_ENDPOINT: logAnalyticsEndpoint
}

module app 'modules/function-app.bicep' = {
  name: 'mi-assess-function-app'
  params: {
    location: location
    name: 'func-${baseName}'
    tags: allTags
    hostStorageName: hostStorage.outputs.name
    hostBlobEndpoint: hostStorage.outputs.blobEndpoint
    hostQueueEndpoint: hostStorage.outputs.queueEndpoint
    deploymentContainerUrl: '${hostStorage.outputs.blobEndpoint}${deploymentContainerName}'
    appInsightsConnectionString: monitoring.outputs.connectionString
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    runtimeName: runtimeName
    runtimeVersion: runtimeVersion
    userAssignedIdentityResourceId: userAssignedIdentityResourceId
    appSettings: miAssessSettings
  }
}

// The identity that calls Graph/ARM and writes results.
var scannerPrincipalId = useUserAssignedIdentity ? reference(userAssignedIdentityResourceId, '2023-01-31').principalId : app.outputs.principalId

module rbac 'modules/rbac.bicep' = {
  name: 'mi-assess-rbac'
  params: {
    hostPrincipalId: app.outputs.principalId
    scannerPrincipalId: scannerPrincipalId
    hostStorageName: hostStorage.outputs.name
    scanQueueNames: [scanQueueName, '${scanQueueName}-poison']
    dataStorageName: dataStorage.outputs.name
    resultsContainerName: resultsContainerName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module usageReader 'modules/usage-reader.bicep' = if (!empty(logAnalyticsWorkspaceResourceId)) {
  name: 'mi-assess-usage-reader'
  scope: resourceGroup(split(logAnalyticsWorkspaceResourceId, '/')[2], split(logAnalyticsWorkspaceResourceId, '/')[4])
  params: {
    workspaceName: last(split(logAnalyticsWorkspaceResourceId, '/'))
    scannerPrincipalId: scannerPrincipalId
  }
}

module graph 'modules/graph-app-roles.bicep' = if (grantGraphAppRoles) {
  name: 'mi-assess-graph-app-roles'
  params: {
    principalId: scannerPrincipalId
    appRoleValues: graphAppRoles
  }
}

// ---------------------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------------------

output functionAppName string = app.outputs.name
output functionAppUrl string = 'https://${app.outputs.defaultHostName}'
output resultsUrl string = resultsUrl
@description('Scanner identity object id: input of scripts/grant-graph-roles.sh and infra/mg/mg-reader.bicep.')
output principalId string = scannerPrincipalId
output hostPrincipalId string = app.outputs.principalId
output resultsStorageAccountName string = dataStorage.outputs.name
output graphAppRolesGranted bool = grantGraphAppRoles
