#!/usr/bin/env bash
# shellcheck disable=SC2317  # the step functions are called indirectly, through step()
# The record contract: mi-assess's output against schemas/ and the recipes in docs/ingestion.md.
# Owns the contract test run end to end, non-interactive, on a fresh Debian machine:
#   1. tools     a venv in .venv-contract/ with the exact packages of tests/contract/requirements.txt
#                (jsonschema 4.26.0, duckdb 2.0.0 and their dependencies); reused while that file is unchanged
#   2. samples   the directory to validate: $1, else $MI_ASSESS_CONTRACT_SAMPLES, else target/contract-samples.
#                When it is missing or empty, it is filled here: two demo runs (`mi-assess assess --demo
#                --out DIR`, building target/debug/mi-assess with cargo when it is missing), with a
#                suppressions.json written between them (one active and one expired acceptance), so the
#                second run has suppressed findings, a SUPP-001 finding and a previous run to compare with
#   3. tests     tests/contract/run_tests.py: every record validates against its schema, the schemas are
#                valid, the ADX mapping paths and the DCR columns exist in the records, the DuckDB one-liners
#                return one row per line; closes with "contract: N records validated (...), M failures"
# Every step is timed. Exit status is non-zero when any step fails.
#
# Environment: MI_ASSESS_CONTRACT_SAMPLES, MI_ASSESS_BINARY (default $CARGO_TARGET_DIR or target, /debug/mi-assess),
# MI_ASSESS_CONTRACT_VENV (default .venv-contract), PYTHON (default python3).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
SAMPLES=${1:-${MI_ASSESS_CONTRACT_SAMPLES:-$ROOT/target/contract-samples}}
case $SAMPLES in /*) ;; *) SAMPLES=$ROOT/$SAMPLES ;; esac
VENV=${MI_ASSESS_CONTRACT_VENV:-$ROOT/.venv-contract}
PYTHON=${PYTHON:-python3}
DEFAULT_BINARY=${CARGO_TARGET_DIR:-$ROOT/target}/debug/mi-assess
BINARY=${MI_ASSESS_BINARY:-$DEFAULT_BINARY}
REQUIREMENTS=$ROOT/tests/contract/requirements.txt

declare -a SUMMARY=()
FAILED=0
T0=$(date +%s%N)

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
fmt_ms() { printf '%d.%01ds' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }
step() {  # step NAME COMMAND...
  local name=$1; shift
  echo
  echo "==> $name"
  local t rc took
  t=$(date +%s%N)
  "$@"; rc=$?
  took=$(ms_since "$t")
  if [ "$rc" -eq 0 ]; then
    echo "<== $name: ok ($(fmt_ms "$took"))"; SUMMARY+=("ok    $(printf '%8s' "$(fmt_ms "$took")")  $name")
  else
    echo "<== $name: FAILED, exit $rc ($(fmt_ms "$took"))"; SUMMARY+=("FAIL  $(printf '%8s' "$(fmt_ms "$took")")  $name")
    FAILED=1
  fi
  return "$rc"
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

tools() {
  command -v "$PYTHON" >/dev/null 2>&1 || apt_install python3 python3-venv \
    || { echo "python3 is missing and could not be installed" >&2; return 1; }
  if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "python3 venv support missing: installing python3-venv"
    apt_install python3-venv || { echo "install python3-venv (Debian/Ubuntu) and re-run" >&2; return 1; }
  fi
  local stamp="$VENV/.installed" want
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "reusing $VENV"
  else
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || return 1
    # pip must see the machine's CA bundle, not the throwaway CA scripts/test.sh exports for Azurite.
    if [[ "${SSL_CERT_FILE:-}" == "$ROOT/.test-env/"* ]]; then unset SSL_CERT_FILE; fi
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQUIREMENTS" || return 1
    echo "$want" >"$stamp"
    echo "installed into $VENV:"
  fi
  "$VENV/bin/python" -m pip freeze --disable-pip-version-check | sed 's/^/  /'
}

binary() {
  if [ -x "$BINARY" ]; then
    echo "using $BINARY"; return 0
  fi
  if [ "$BINARY" != "$DEFAULT_BINARY" ]; then
    echo "MI_ASSESS_BINARY=$BINARY does not exist" >&2; return 1
  fi
  echo "$BINARY missing: cargo build --bin mi-assess"
  cargo build --bin mi-assess || return 1
  [ -x "$BINARY" ] || { echo "cargo build did not produce $BINARY" >&2; return 1; }
}

# Writes DIR/suppressions.json from the first run's findings: one acceptance that holds for a year
# and one that expired in 2020.
write_suppressions() {
  "$PYTHON" - "$1" <<'PY'
import json, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
root = Path(sys.argv[1])
findings = [json.loads(line) for f in sorted(root.glob("runs/*/*/*/*/*/findings.ndjson")) for line in f.read_text().splitlines() if line]
if not findings:
    sys.exit("the first demo run wrote no findings")
first = findings[0]
other = next((f for f in findings if (f["ruleId"], f["identityId"]) != (first["ruleId"], first["identityId"])), first)
expires = (datetime.now(timezone.utc) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
entries = [
    {"ruleId": first["ruleId"], "identityId": first["identityId"], "reason": "contract test: accepted for a year",
     "expires": expires, "approvedBy": "scripts/validate-contract.sh"},
    {"ruleId": other["ruleId"], "identityId": other["identityId"], "reason": "contract test: acceptance that ran out",
     "expires": "2020-01-01T00:00:00Z"},
]
(root / "suppressions.json").write_text(json.dumps({"suppressions": entries}, indent=2) + "\n")
print(f"suppressions.json: {first['ruleId']} on {first['identityName']} until {expires}; "
      f"{other['ruleId']} on {other['identityName']} expired")
PY
}

demo_run() {
  local log rc
  log=$(mktemp)
  "$BINARY" assess --demo --out "$SAMPLES" >"$log" 2>&1
  rc=$?
  tail -n 3 "$log"
  if [ "$rc" -ne 0 ]; then
    echo "mi-assess assess --demo exited $rc:" >&2; cat "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}

samples() {
  if [ -d "$SAMPLES" ] && [ -n "$(ls -A "$SAMPLES" 2>/dev/null)" ]; then
    echo "validating the samples in $SAMPLES ($(find "$SAMPLES" -type f | wc -l) files)"
    return 0
  fi
  echo "$SAMPLES is missing or empty: two demo runs into it"
  binary || return 1
  mkdir -p "$SAMPLES" || return 1
  demo_run || return 1
  write_suppressions "$SAMPLES" || return 1
  demo_run || return 1
  find "$SAMPLES" -type f | sed "s|^$SAMPLES/|  |" | sort
}

contract_tests() {
  PYTHONDONTWRITEBYTECODE=1 MI_ASSESS_CONTRACT_SAMPLES="$SAMPLES" \
    "$VENV/bin/python" tests/contract/run_tests.py
}

step "tools (venv $VENV: tests/contract/requirements.txt)" tools
TOOLS_OK=$?
step "samples ($SAMPLES)" samples
SAMPLES_OK=$?
if [ "$TOOLS_OK" -eq 0 ] && [ "$SAMPLES_OK" -eq 0 ]; then
  step "contract tests tests/contract (unittest, jsonschema 4.26.0, duckdb 2.0.0)" contract_tests
fi

echo
echo "validate-contract summary (total $(fmt_ms "$(ms_since "$T0")")):"
printf '  %s\n' "${SUMMARY[@]}"
exit "$FAILED"
