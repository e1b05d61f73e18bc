#!/usr/bin/env bash
# Grant the Microsoft Graph application permissions (app roles) that mi-assess needs to its managed identity,
# with `az rest` (the alternative to main.bicep's grantGraphAppRoles=true). Idempotent: roles that are
# already assigned are reported and left alone. Only adds, never removes.
#
#   scripts/grant-graph-roles.sh --principal-id <objectId>
#   scripts/grant-graph-roles.sh --resource-group <rg> --app <function-app-name>   (uses the app's system identity)
#
# Options:
#   --principal-id ID     object id of the managed identity's service principal (main.bicep output principalId)
#   -g, --resource-group  with --app: resolve the principal id from the function app's system-assigned identity
#   --app NAME            function app name (main.bicep output functionAppName)
#   --roles A,B,C         app roles to grant (default: Application.Read.All,GroupMember.Read.All,RoleManagement.Read.Directory,Directory.Read.All)
#   --graph-endpoint URL  Graph root for sovereign clouds (default: $MI_ASSESS_GRAPH_ENDPOINT or https://graph.microsoft.com;
#                         also run `az cloud set` for that cloud)
#   --dry-run             show what would be granted, change nothing
#   --list                only list the Graph app roles the identity holds now
#
# Who can run it: a user with the Entra role Privileged Role Administrator (least privileged role that may
# grant Microsoft Graph app roles) or Global Administrator, or a workload identity with the Graph application
# permissions AppRoleAssignment.ReadWrite.All + Application.Read.All.
# Needs: az (logged in: az login), python3.
set -euo pipefail

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
ROLES="Application.Read.All,GroupMember.Read.All,RoleManagement.Read.Directory,Directory.Read.All"
GRAPH=${MI_ASSESS_GRAPH_ENDPOINT:-https://graph.microsoft.com}
PRINCIPAL=""
RG=""
APP=""
DRY_RUN=0
LIST_ONLY=0

die() { printf 'grant-graph-roles: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --principal-id) PRINCIPAL=${2:?--principal-id needs a value}; shift 2 ;;
    -g|--resource-group) RG=${2:?--resource-group needs a value}; shift 2 ;;
    --app|-n|--name) APP=${2:?--app needs a value}; shift 2 ;;
    --roles) ROLES=${2:?--roles needs a value}; shift 2 ;;
    --graph-endpoint) GRAPH=${2:?--graph-endpoint needs a value}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --list) LIST_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
GRAPH=${GRAPH%/}

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required: https://aka.ms/azure-cli"
command -v python3 >/dev/null 2>&1 || die "python3 is required"
az account show --output none 2>/dev/null || die "not logged in: run az login (as a Privileged Role Administrator)"

# JSON field extraction without jq: json_get '<python expression over d>' < json
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); r='"$1"'; print("\n".join(map(str,r)) if isinstance(r,list) else ("" if r is None else r))'; }
graph() { az rest --only-show-errors --resource "$GRAPH" --headers 'Content-Type=application/json' "$@"; }

if [ -z "$PRINCIPAL" ]; then
  if [ -z "$RG" ] || [ -z "$APP" ]; then die "give --principal-id, or --resource-group and --app"; fi
  PRINCIPAL=$(az functionapp identity show --resource-group "$RG" --name "$APP" --query principalId --output tsv) \
    || die "could not read the identity of function app $APP in $RG"
  [ -n "$PRINCIPAL" ] || die "function app $APP has no system-assigned identity"
fi

[[ "$PRINCIPAL" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]] \
  || die "principal id must be an object id (GUID), got: $PRINCIPAL"
[[ "$ROLES" =~ ^[A-Za-z0-9.,\ ]+$ ]] || die "--roles takes comma-separated permission names, got: $ROLES"

mi_json=$(graph --method GET --url "$GRAPH/v1.0/servicePrincipals/$PRINCIPAL?\$select=id,displayName,servicePrincipalType") \
  || die "service principal $PRINCIPAL not found in Graph (wrong tenant, or the identity was just created: retry in a minute)"
mi_name=$(json_get 'd.get("displayName")' <<<"$mi_json")
mi_type=$(json_get 'd.get("servicePrincipalType")' <<<"$mi_json")
echo "identity:  $mi_name ($PRINCIPAL, $mi_type)"
[ "$mi_type" = "ManagedIdentity" ] || echo "warning: $PRINCIPAL is a $mi_type service principal, not a managed identity" >&2

graph_sp_json=$(graph --method GET --url "$GRAPH/v1.0/servicePrincipals(appId='$GRAPH_APP_ID')?\$select=id,appRoles") \
  || die "could not read the Microsoft Graph service principal"
GRAPH_SP=$(json_get 'd["id"]' <<<"$graph_sp_json")
echo "resource:  Microsoft Graph ($GRAPH_SP) at $GRAPH"

# appRoleId -> value of every Graph role the identity holds now.
held_json=$(graph --method GET --url "$GRAPH/v1.0/servicePrincipals/$PRINCIPAL/appRoleAssignments?\$top=999")
held_ids=$(json_get "[a['appRoleId'] for a in d.get('value', []) if a.get('resourceId') == '$GRAPH_SP']" <<<"$held_json")

role_name() { json_get "next((r['value'] for r in d.get('appRoles', []) if r['id'] == '$1'), '$1')" <<<"$graph_sp_json"; }

if [ "$LIST_ONLY" -eq 1 ]; then
  echo "Graph app roles held by $PRINCIPAL:"
  for id in $held_ids; do echo "  $(role_name "$id") ($id)"; done
  [ -n "$held_ids" ] || echo "  (none)"
  exit 0
fi

granted=0 existing=0 failed=0
IFS=',' read -r -a wanted <<<"$ROLES"
for role in "${wanted[@]}"; do
  role=$(echo "$role" | tr -d '[:space:]')
  [ -n "$role" ] || continue
  role_id=$(json_get "next((r['id'] for r in d.get('appRoles', []) if r['value'] == '$role' and 'Application' in r.get('allowedMemberTypes', [])), '')" <<<"$graph_sp_json")
  if [ -z "$role_id" ]; then
    echo "unknown:   $role (no Graph application permission of that name)"; failed=$((failed + 1)); continue
  fi
  if grep -qx "$role_id" <<<"$held_ids"; then
    echo "existing:  $role ($role_id) already assigned"; existing=$((existing + 1)); continue
  fi
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "would grant: $role ($role_id)"; continue
  fi
  body="{\"principalId\":\"$PRINCIPAL\",\"resourceId\":\"$GRAPH_SP\",\"appRoleId\":\"$role_id\"}"
  if out=$(graph --method POST --url "$GRAPH/v1.0/servicePrincipals/$GRAPH_SP/appRoleAssignedTo" --body "$body" 2>&1); then
    assignment=$(json_get 'd.get("id")' <<<"$out" 2>/dev/null || true)
    echo "granted:   $role ($role_id) assignment ${assignment:-?}"; granted=$((granted + 1))
  elif grep -qi 'already exists' <<<"$out"; then
    echo "existing:  $role ($role_id) already assigned (assigned concurrently)"; existing=$((existing + 1))
  else
    echo "failed:    $role ($role_id): $out"; failed=$((failed + 1))
  fi
done

echo "summary: $granted granted, $existing already assigned, $failed failed"
if [ "$granted" -gt 0 ]; then
  echo "note: new app roles reach the app with its next token; restart it to use them now:"
  echo "      az functionapp restart --resource-group <rg> --name <app>"
fi
[ "$failed" -eq 0 ] || { echo "some roles were not granted (needs Privileged Role Administrator, or AppRoleAssignment.ReadWrite.All)" >&2; exit 1; }
