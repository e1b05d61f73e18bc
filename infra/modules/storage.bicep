// A StorageV2 account reachable only with Entra ID: no shared keys, no key-signed SAS,
// no anonymous blob access, TLS 1.2, HTTPS only. Creates private containers and queues.

@description('Azure region.')
param location string

@description('Globally unique account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Tags applied to the account.')
param tags object = {}

@description('Private blob containers to create.')
param containerNames array = []

@description('Queues to create (e.g. the scan queue on the host account).')
param queueNames array = []

@description('Redundancy. LRS is available in every Flex Consumption region; choose ZRS/GZRS where offered.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param skuName string = 'Standard_LRS'

@description('Soft-delete retention for blobs and containers, in days.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 7

resource account 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches storage over the public endpoint; every request needs an Entra token (shared keys are disabled)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35; close with private endpoints + a VNet-integrated Flex app
  // checkov:skip=CKV_AZURE_206: redundancy is the skuName parameter (GRS/GZRS allowed); LRS default keeps every Flex region deployable
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false // no account keys, no key-signed SAS: Entra ID only
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { bypass: 'AzureServices', defaultAction: 'Allow' }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: deleteRetentionDays }
    containerDeleteRetentionPolicy: { enabled: true, days: deleteRetentionDays }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = [
  for c in containerNames: {
    parent: blobService
    name: c
    properties: { publicAccess: 'None' }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [
  for q in queueNames: {
    parent: queueService
    name: q
  }
]

output name string = account.name
output id string = account.id
// Both end with a slash, e.g. https://<account>.blob.core.windows.net/ (the cloud's own suffix in sovereign clouds).
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
