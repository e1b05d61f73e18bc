#!/usr/bin/env bash
# The project's one test command (README.md "Run the tests"; .ci/run calls exactly this).
#
# On a fresh Debian machine it installs and starts everything the tests need, then runs them:
#   1. tools     openssl (Debian) if missing; Azurite 3.37.0 from npm into .test-env/azurite
#   2. certs     a throwaway CA and a 127.0.0.1 server certificate, generated for this run
#   3. azurite   azurite-blob over HTTPS with --oauth basic (bearer tokens, like real Storage)
#   4. lint      cargo fmt --check, cargo clippy --all-targets -D warnings, and the layer rule
#                (scripts/check-layers.py: no module uses a higher layer, docs/architecture.md)
#   5. cargo     cargo test: unit tests and the black-box tests, which spawn the real binary the
#                way the Functions host does, against the Graph simulator and Azurite
#   6. contract  scripts/validate-contract.sh: every record the tests and the demo produced validates
#                against schemas/, and the ingestion recipes in docs/ingestion.md match real output
#   7. report    scripts/test-report-browser.sh: the demo's report.html in headless Chromium
#   8. infra     scripts/validate-infra.sh (Bicep parse, checkov, function.json, drift, zip layout)
#   9. fuzz      scripts/fuzz.sh: every cargo-fuzz target in fuzz/ for 30 s, seeded with fixtures
# Azurite is stopped on exit. Exit status is non-zero if any step fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ENV_DIR="$ROOT/.test-env"
AZURITE_VERSION=3.37.0
mkdir -p "$ENV_DIR"

log() { printf '\n==> %s\n' "$*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1
  fi
}

log "tools"
if ! command -v openssl >/dev/null 2>&1; then
  as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl
fi
command -v node >/dev/null 2>&1 || { echo "node is required (Node.js 20+) to run Azurite" >&2; exit 1; }
AZURITE_BIN="$ENV_DIR/azurite/node_modules/.bin/azurite-blob"
if [ ! -x "$AZURITE_BIN" ] || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$ENV_DIR/azurite/node_modules/azurite/package.json" 2>/dev/null; then
  npm install --silent --no-audit --no-fund --prefix "$ENV_DIR/azurite" "azurite@$AZURITE_VERSION"
fi

log "certs"
CERTS="$ENV_DIR/certs"
rm -rf "$CERTS" && mkdir -p "$CERTS"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" -days 2 \
  -subj "/CN=mi-assess test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$CERTS/server.key" -out "$CERTS/server.csr" \
  -subj "/CN=127.0.0.1" 2>/dev/null
printf "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > "$CERTS/ext.cnf"
openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -CAcreateserial \
  -out "$CERTS/server.pem" -days 2 -extfile "$CERTS/ext.cnf" 2>/dev/null

log "azurite"
BLOB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AZURITE_LOG="$ENV_DIR/azurite.log"
"$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$BLOB_PORT" --inMemoryPersistence --oauth basic \
  --cert "$CERTS/server.pem" --key "$CERTS/server.key" --disableTelemetry --silent >"$AZURITE_LOG" 2>&1 &
AZURITE_PID=$!
trap 'kill "$AZURITE_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if curl -s -o /dev/null --cacert "$CERTS/ca.pem" "https://127.0.0.1:$BLOB_PORT/devstoreaccount1?comp=list"; then
    break
  fi
  kill -0 "$AZURITE_PID" 2>/dev/null || { echo "Azurite exited:" >&2; cat "$AZURITE_LOG" >&2; exit 1; }
  sleep 0.2
done
echo "Azurite $AZURITE_VERSION (blob, HTTPS, OAuth) on 127.0.0.1:$BLOB_PORT"
export MI_ASSESS_TEST_AZURITE_BLOB="https://127.0.0.1:$BLOB_PORT/devstoreaccount1"
# rustls (through rustls-native-certs) trusts exactly this CA for the test processes.
export SSL_CERT_FILE="$CERTS/ca.pem"

log "lint"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
python3 scripts/check-layers.py --self-test
python3 scripts/check-layers.py

log "cargo test"
# The black-box tests copy every record they produce here for the contract check.
rm -rf "$ROOT/target/contract-samples"
cargo test --locked

log "contract (JSON Schemas, ingestion recipes)"
# The demo's own output too: two runs, so the second has a previous run to compare with.
for _ in 1 2; do
  "$ROOT/target/debug/mi-assess" assess --demo --out "$ROOT/target/contract-samples/demo" >/dev/null 2>&1
done
env -u SSL_CERT_FILE MI_ASSESS_CONTRACT_SAMPLES="$ROOT/target/contract-samples" "$ROOT/scripts/validate-contract.sh"

log "report in a real browser"
env -u SSL_CERT_FILE "$ROOT/scripts/test-report-browser.sh"

log "infra validation"
# pip must see the machine's CA bundle, not the test CA.
env -u SSL_CERT_FILE MI_ASSESS_BINARY="$ROOT/target/debug/mi-assess" "$ROOT/scripts/validate-infra.sh"

log "fuzz (every target for 30 s)"
env -u SSL_CERT_FILE "$ROOT/scripts/fuzz.sh" 30

log "all tests passed"
