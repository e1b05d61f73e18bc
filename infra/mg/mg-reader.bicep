// Optional, separate deployment: Reader for the mi-assess identity on a management group, so the
// Azure-plane assessment (role assignments, federated credentials, resources holding the identities)
// can read every subscription below it. Deploy with rights to assign roles on the management group
// (Owner or User Access Administrator there):
//   az deployment mg create --management-group-id <mg> --location <region> \
//     --template-file infra/mg/mg-reader.bicep --parameters principalId=<principalId output of main.bicep>
// Use the tenant root group to cover the whole tenant.
targetScope = 'managementGroup'

@description('Object id of the mi-assess scanner identity (principalId output of main.bicep).')
param principalId string

@description('Role to assign. Default Reader; any narrower custom read-only role id also works.')
param roleDefinitionGuid string = 'acdd72a7-3385-48ef-bd42-f606fba81ae7' // Reader

resource readerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'mi-assess: read-only Azure-plane assessment'
  }
}

output roleAssignmentId string = readerAssignment.id
