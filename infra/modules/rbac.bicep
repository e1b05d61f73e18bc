// Azure RBAC for the function app, each role at the narrowest scope that works:
//   host identity    - Storage Blob Data Owner on the host account (Functions host: leases, keys, Flex package)
//                    - Storage Queue Data Contributor on the scan queue and its poison queue only
//                    - Monitoring Metrics Publisher on Application Insights (Entra-authenticated telemetry)
//   scanner identity - Storage Blob Data Contributor on the results container only
// The scanner identity is the system-assigned identity unless a user-assigned one is configured.
// All roles are data-plane roles on this deployment's own resources; no read right on anything else.

@description('Object id of the function app system-assigned identity (used by the Functions host).')
param hostPrincipalId string

@description('Object id of the identity the handler scans and writes results with.')
param scannerPrincipalId string

@description('Host storage account name.')
param hostStorageName string

@description('Scan queue names on the host account (the queue and its -poison queue).')
param scanQueueNames array

@description('Results storage account name.')
param dataStorageName string

@description('Results container name.')
param resultsContainerName string

@description('Application Insights component name.')
param appInsightsName string

var blobOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
var blobContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
var queueContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
var metricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher

resource hostSa 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: hostStorageName
  resource queueService 'queueServices' existing = {
    name: 'default'
  }
}

resource scanQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' existing = [
  for q in scanQueueNames: {
    parent: hostSa::queueService
    name: q
  }
]

resource dataSa 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: dataStorageName
  resource blobService 'blobServices' existing = {
    name: 'default'
    resource results 'containers' existing = {
      name: resultsContainerName
    }
  }
}

resource appi 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostSa.id, hostPrincipalId, blobOwner)
  scope: hostSa
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobOwner)
    principalId: hostPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mi-assess: Functions host storage (AzureWebJobsStorage, Flex deployment package)'
  }
}

resource scanQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (q, i) in scanQueueNames: {
    name: guid(scanQueues[i].id, hostPrincipalId, queueContributor)
    scope: scanQueues[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', queueContributor)
      principalId: hostPrincipalId
      principalType: 'ServicePrincipal'
      description: 'mi-assess: on-demand scan queue ${q} (queue output + queueTrigger)'
    }
  }
]

resource resultsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataSa::blobService::results.id, scannerPrincipalId, blobContributor)
  scope: dataSa::blobService::results // container scope only
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
    principalId: scannerPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mi-assess: write assessment results to this container only'
  }
}

resource telemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appi.id, hostPrincipalId, metricsPublisher)
  scope: appi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', metricsPublisher)
    principalId: hostPrincipalId
    principalType: 'ServicePrincipal'
    description: 'mi-assess: Entra-authenticated Application Insights ingestion'
  }
}
