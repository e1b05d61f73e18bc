// Log Analytics workspace + workspace-based Application Insights, Entra-only ingestion.
// The app sends telemetry with its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING),
// so local (instrumentation-key) authentication is disabled on both resources.

@description('Azure region.')
param location string

@description('Base name; resources are named log-<name> and appi-<name>.')
param name string

@description('Tags applied to every resource.')
param tags object = {}

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${name}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
    features: { disableLocalAuth: true } // no workspace shared keys
  }
}

resource appi 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true // Entra-only ingestion: the instrumentation key alone cannot send data
  }
}

output appInsightsName string = appi.name
// The connection string is not a credential once DisableLocalAuth is true (ingestion needs an Entra token).
output connectionString string = appi.properties.ConnectionString
