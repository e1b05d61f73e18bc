// Flex Consumption (FC1, Linux) plan + function app running the mi-assess custom handler.
// Identity only: host storage, deployment storage and Application Insights are all reached with the
// app's system-assigned managed identity; no key, secret or connection string is stored.

@description('Azure region.')
param location string

@description('Function app name (also the <name>.azurewebsites.net host name).')
param name string

@description('Tags applied to the plan and the site. The site also gets azd-service-name.')
param tags object = {}

@description('azd service name (azure.yaml services key); azd finds the site by this tag.')
param azdServiceName string = 'mi-assess'

@description('Host storage account name (AzureWebJobsStorage).')
param hostStorageName string

@description('Primary blob endpoint of the host storage account, with trailing slash.')
param hostBlobEndpoint string

@description('Primary queue endpoint of the host storage account, with trailing slash.')
param hostQueueEndpoint string

@description('Flex deployment container URL: https://<account>.blob.core.windows.net/<container> (no trailing slash).')
param deploymentContainerUrl string

@description('Application Insights connection string (not a credential: local auth is disabled).')
param appInsightsConnectionString string

@description('Flex instance memory in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Upper bound for Flex scale-out.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

// Runtime stack (open point, see shared/reference functions-custom-handler.md section 8).
// The Flex stacks API lists a `custom` stack, version 1.0 (Az.Functions FunctionsStackFlexData, REST enum
// RuntimeName includes `custom`), and the Flex plan page lists "custom handlers 1.0": that is the default here.
// Older evidence shows ARM rejecting `custom` on Flex and Microsoft's own custom-handler samples using a
// language stack as carrier (`python` 3.12 / `node` 22) with `customHandler` in host.json. The host runs the
// custom handler from host.json either way, so if ARM rejects `custom` in your region, redeploy with
// runtimeName=python runtimeVersion=3.12 (or node/22). Check with `az functionapp list-flexconsumption-runtimes`.
@description('functionAppConfig.runtime.name. Default custom (custom handler stack); python/node only as carrier, see comment.')
@allowed(['custom', 'python', 'node'])
param runtimeName string = 'custom'

@description('functionAppConfig.runtime.version matching runtimeName (custom: 1.0, python: 3.12, node: 22).')
param runtimeVersion string = '1.0'

@description('Resource id of a user-assigned identity to attach in addition to the system-assigned one; empty for none.')
param userAssignedIdentityResourceId string = ''

@description('Application settings read by the handler (MI_ASSESS_*), merged over the host settings below.')
param appSettings object = {}

var hostSettings = {
  // Identity-based host storage (system-assigned identity; service URIs work in sovereign clouds too).
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__blobServiceUri: hostBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: hostQueueEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD' // Entra auth with the system-assigned identity
}
// No FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE / WEBSITE_CONTENT*:
// deprecated on Flex, replaced by functionAppConfig.
var settings = union(hostSettings, appSettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex needs always-ready instances (billed around the clock) for a nightly batch job
  name: 'asp-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true } // Linux
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_16: identity.type is an expression checkov cannot evaluate: always SystemAssigned, plus UserAssigned when userAssignedIdentityResourceId is set (CKV_AZURE_71 passes)
  // checkov:skip=CKV_AZURE_17: no client certificates: HTTP functions use function keys over HTTPS, the app is not an mTLS endpoint
  // checkov:skip=CKV_AZURE_78: ftpsState is not supported on Flex Consumption; FTP and SCM basic auth are disabled below
  // checkov:skip=CKV_AZURE_212: numberOfWorkers does not apply to Flex Consumption (scale is functionAppConfig.scaleAndConcurrency)
  // checkov:skip=CKV_AZURE_213: App Service health check pings would keep Flex instances awake; the Functions host itself probes the handler for readiness (GET / on FUNCTIONS_CUSTOMHANDLER_PORT)
  // checkov:skip=CKV_AZURE_222: on-demand scans are called over the public endpoint with a function key; use private endpoints to close it
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': azdServiceName })
  kind: 'functionapp,linux'
  identity: {
    type: empty(userAssignedIdentityResourceId) ? 'SystemAssigned' : 'SystemAssigned, UserAssigned'
    userAssignedIdentities: empty(userAssignedIdentityResourceId) ? null : { '${userAssignedIdentityResourceId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [for s in items(settings): { name: s.key, value: s.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: { name: runtimeName, version: runtimeVersion }
    }
  }
}

// No publishing with user names and passwords: deploy with an Entra token (az functionapp deploy / azd).
resource basicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = [
  for n in ['scm', 'ftp']: {
    parent: site
    name: n
    properties: { allow: false }
  }
]

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output principalId string = site.identity.principalId
