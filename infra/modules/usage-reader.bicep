// Log Analytics Reader on one workspace for the scanner identity: what the usage plane needs to
// query AADManagedIdentitySignInLogs, MicrosoftGraphActivityLogs and AzureActivity. Deployed in the
// workspace's resource group (main.bicep scopes it there from logAnalyticsWorkspaceResourceId).

@description('Name of the Log Analytics workspace.')
param workspaceName string

@description('Object id of the identity the handler scans with.')
param scannerPrincipalId string

var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893' // Log Analytics Reader

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, scannerPrincipalId, logAnalyticsReader)
  scope: workspace
  properties: {
    principalId: scannerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    description: 'mi-assess usage plane: read the sign-in, Graph activity and Azure activity logs'
  }
}
