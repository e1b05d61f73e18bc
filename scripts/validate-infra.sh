#!/usr/bin/env bash
# shellcheck disable=SC2317  # the step functions are called indirectly, through step()
# Offline validation of the deployment side (no Azure access, no Bicep CLI), non-interactive:
#   1. tools       venvs under .venv-infra/: pycep-parser==0.7.1, and checkov==3.3.30 (which pins pycep 0.5.1,
#                  hence its own venv); reused when already installed
#   2. binary      $MI_ASSESS_BINARY (default target/debug/mi-assess; built with `cargo build` when missing)
#   3. pycep       every infra/**/*.bicep parses with pycep-parser 0.7.1
#   4. checkov     checkov --framework bicep --skip-download on infra/: no failed check, no parsing error
#                  (graph-app-roles.bicep is skipped: checkov's pycep 0.5.1 cannot parse `extension`; step 3
#                  parses it); suppressions only inline, each with a reason (checked in step 5)
#   5. tests       tests/infra/*.py (stdlib unittest): Bicep policy, function.json, app-settings drift,
#                  zip layout (scripts/package.sh --binary), grant script; strict: nothing may be skipped for
#                  lack of a tool
# Every step is timed. Exit status is non-zero when any step fails; all steps run regardless.
#
# Environment: MI_ASSESS_BINARY, MI_ASSESS_INFRA_VENV (default .venv-infra), PYTHON (default python3).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
VENV=${MI_ASSESS_INFRA_VENV:-$ROOT/.venv-infra}
PYTHON=${PYTHON:-python3}
PYCEP_SPEC="pycep-parser==0.7.1"
CHECKOV_SPEC="checkov==3.3.30"
BINARY=${MI_ASSESS_BINARY:-$ROOT/target/debug/mi-assess}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

declare -a SUMMARY=()
FAILED=0
T0=$(date +%s%N)

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
fmt_ms() { printf '%d.%01ds' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }
step() {  # step NAME COMMAND...
  local name=$1; shift
  echo
  echo "==> $name"
  local t rc
  t=$(date +%s%N)
  "$@"; rc=$?
  local took; took=$(ms_since "$t")
  if [ $rc -eq 0 ]; then
    echo "<== $name: ok ($(fmt_ms "$took"))"; SUMMARY+=("ok    $(printf '%8s' "$(fmt_ms "$took")")  $name")
  else
    echo "<== $name: FAILED, exit $rc ($(fmt_ms "$took"))"; SUMMARY+=("FAIL  $(printf '%8s' "$(fmt_ms "$took")")  $name")
    FAILED=1
  fi
  return $rc
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
    || { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; }
}

# venv DIR SPEC: create DIR with SPEC installed, unless already there.
make_venv() {
  local dir=$1 spec=$2 stamp="$1/.installed"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$spec" ]; then
    echo "reusing $dir ($spec)"; return 0
  fi
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir" || return 1
  "$dir/bin/python" -m pip install --disable-pip-version-check --no-input -q "$spec" || return 1
  echo "$spec" >"$stamp"
  echo "installed $spec into $dir"
}

tools() {
  command -v "$PYTHON" >/dev/null 2>&1 || apt_install python3 python3-venv python3-pip \
    || { echo "python3 is missing and could not be installed" >&2; return 1; }
  if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "python3 venv support missing: installing python3-venv"
    apt_install python3-venv || { echo "install python3-venv (Debian/Ubuntu) and re-run" >&2; return 1; }
  fi
  if ! command -v unzip >/dev/null 2>&1; then
    apt_install unzip >/dev/null 2>&1 || echo "note: unzip not installed; the extract-and-exec check will be skipped"
  fi
  mkdir -p "$VENV"
  # The two installs are independent: run them side by side.
  make_venv "$VENV/pycep" "$PYCEP_SPEC" >"$WORK/pycep.log" 2>&1 &
  local p1=$!
  make_venv "$VENV/checkov" "$CHECKOV_SPEC" >"$WORK/checkov.log" 2>&1 &
  local p2=$!
  local rc=0
  wait "$p1" || rc=1
  wait "$p2" || rc=1
  cat "$WORK/pycep.log" "$WORK/checkov.log"
  return "$rc"
}

binary() {
  if [ -f "$BINARY" ]; then
    echo "using $BINARY ($(stat -c %s "$BINARY") bytes)"; return 0
  fi
  if [ "$BINARY" != "$ROOT/target/debug/mi-assess" ]; then
    echo "MI_ASSESS_BINARY=$BINARY does not exist" >&2; return 1
  fi
  echo "$BINARY missing: cargo build --bin mi-assess"
  cargo build --bin mi-assess
}

pycep_parse() {
  "$VENV/pycep/bin/python" - infra <<'PY'
import sys, pathlib
from pycep import BicepParser
parser, bad, files = BicepParser(), [], sorted(pathlib.Path(sys.argv[1]).rglob("*.bicep"))
for f in files:
    try:
        parser.parse(text=f.read_text())
        print(f"  parsed  {f}")
    except Exception as e:  # any parser error fails the gate
        bad.append(f"  FAILED  {f}: {str(e).splitlines()[0]}")
print("\n".join(bad))
print(f"pycep 0.7.1: {len(files) - len(bad)}/{len(files)} files parse")
sys.exit(1 if bad or not files else 0)
PY
}

checkov_scan() {
  "$VENV/checkov/bin/checkov" -d infra --framework bicep --skip-download --compact --quiet \
    --skip-path 'graph-app-roles.bicep' \
    -o cli -o json --output-file-path "console,$WORK/checkov.json"
  local rc=$?
  "$VENV/checkov/bin/python" - "$WORK/checkov.json" "$rc" <<'PY'
import json, sys, pathlib, re
path, rc = pathlib.Path(sys.argv[1]), int(sys.argv[2])
if not path.is_file():
    sys.exit(f"checkov wrote no JSON report (exit {rc})")
data = json.loads(path.read_text())
reports = data if isinstance(data, list) else [data]
s = {k: sum(r.get("summary", {}).get(k, 0) for r in reports) for k in ("passed", "failed", "skipped", "parsing_errors", "resource_count")}
skips = sorted({m for f in pathlib.Path("infra").rglob("*.bicep") for m in re.findall(r"checkov:skip=(CKV2?_\w+)", f.read_text())})
print(f"checkov 3.3.30: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped (inline, with reasons), "
      f"{s['parsing_errors']} parsing errors, {s['resource_count']} resources")
print(f"suppressed check ids: {', '.join(skips)}")
if rc != 0 or s["failed"] or s["parsing_errors"] or not s["passed"]:
    sys.exit(1)
PY
}

unit_tests() {
  MI_ASSESS_INFRA_STRICT=1 MI_ASSESS_BINARY="$BINARY" PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/pycep/bin/python" tests/infra/run_tests.py
}

step "tools (venvs: $PYCEP_SPEC, $CHECKOV_SPEC)" tools
TOOLS_OK=$?
step "binary for the zip-layout test" binary
if [ $TOOLS_OK -eq 0 ]; then
  step "pycep-parser 0.7.1 parses every .bicep" pycep_parse
  step "checkov 3.3.30 --framework bicep on infra/" checkov_scan
  step "unit tests tests/infra (unittest)" unit_tests
fi

echo
echo "validate-infra summary (total $(fmt_ms "$(ms_since "$T0")")):"
printf '  %s\n' "${SUMMARY[@]}"
exit $FAILED
