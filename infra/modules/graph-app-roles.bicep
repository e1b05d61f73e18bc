// Microsoft Graph application permissions (app roles) for the scanner identity, through the
// Microsoft Graph Bicep extension v1.0 (Bicep CLI >= 0.36.1, alias in ../bicepconfig.json).
// The deployer needs Privileged Role Administrator (as a user) or the Graph application permissions
// AppRoleAssignment.ReadWrite.All + Application.Read.All (as a workload identity). Without them deploy
// main.bicep with grantGraphAppRoles=false and run scripts/grant-graph-roles.sh as someone who has them.
// Not supported in deployment stacks. Public cloud Graph only.
extension microsoftGraphV1

@description('Object id of the managed identity service principal that receives the app roles.')
param principalId string

@description('Graph application permission names, e.g. GroupMember.Read.All.')
param appRoleValues array

resource msGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000' // Microsoft Graph
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for v in appRoleValues: {
    principalId: principalId
    resourceId: msGraph.id
    appRoleId: filter(msGraph.appRoles, r => r.value == v && contains(r.allowedMemberTypes, 'Application'))[0].id
  }
]

output grantedAppRoles array = appRoleValues
