#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a fixed time, seeded with the project's real fixtures.
#
#   scripts/fuzz.sh            30 s per target (what scripts/test.sh runs)
#   scripts/fuzz.sh 600        10 minutes per target
#   scripts/fuzz.sh 60 snapshot  one target
#
# cargo-fuzz builds libFuzzer targets with AddressSanitizer, which takes `-Zsanitizer`; this
# machine has one stable toolchain, and RUSTC_BOOTSTRAP=1 lets it accept that flag. A crash stops
# the run with a non-zero status and leaves the input in fuzz/artifacts/<target>/; turn it into a
# regression test (see fuzz/README.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PER_TARGET=${1:-30}
ONLY=${2:-}
CARGO_FUZZ_VERSION=0.13.2
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# Seed corpora from real inputs: host envelopes, Graph payloads, a demo snapshot, and tokens,
# links and ARM ids shaped like the real ones.
CORPUS="$ROOT/target/fuzz-corpus"
rm -rf "$CORPUS"
seed() { local target=$1; shift; mkdir -p "$CORPUS/$target"; cp "$@" "$CORPUS/$target/"; }
seed host_envelope tests/fixtures/functions-host/*.json
seed graph_page tests/fixtures/graph-docs/*.json
seed graph_batch tests/fixtures/graph-docs/batch_*.json
seed snapshot fuzz/seeds/snapshot/*
seed suppressions fuzz/seeds/suppressions/*
python3 - "$CORPUS" <<'PY'
import base64, json, pathlib, re, sys
corpus = pathlib.Path(sys.argv[1])
def write(target, name, text):
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
claims = {"tid": "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50", "oid": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
          "appid": "9a8b7c6d-5e4f-4031-8291-a0b1c2d3e4f5", "roles": ["Application.Read.All"]}
write("jwt_claims", "token", f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln")
write("jwt_claims", "not-a-guid", f"e30.{b64({'tid': '../latest'})}.c2ln")
write("next_link", "same-origin", "https://graph.microsoft.com/v1.0/servicePrincipals?$skiptoken=X")
write("next_link", "foreign", "https://graph.microsoft.com.evil.example/v1.0/servicePrincipals")
write("next_link", "userinfo", "https://graph.microsoft.com@evil.example/v1.0/x")
ids = set()
for path in pathlib.Path("tests/fixtures/graph-docs").glob("*"):
    ids.update(re.findall(r'/(?:subscriptions|providers)/[^"\s]+', path.read_text(errors="ignore")))
ids.update(re.findall(r'"(/(?:subscriptions|providers)/[^"]+)"',
                      pathlib.Path("src/simulator/demo_tenant.json").read_text()))
for i, arm_id in enumerate(sorted(ids)[:200]):
    write("arm_id", f"id-{i}", arm_id)
PY

status=0
for target in $(cargo fuzz list); do
  if [ -n "$ONLY" ] && [ "$target" != "$ONLY" ]; then continue; fi
  echo "==> fuzz $target (${PER_TARGET} s, seeds: $(ls "$CORPUS/$target" 2>/dev/null | wc -l))"
  if ! cargo fuzz run -O "$target" "$CORPUS/$target" -- \
      -max_total_time="$PER_TARGET" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>"$ROOT/target/fuzz-$target.log"; then
    tail -40 "$ROOT/target/fuzz-$target.log" >&2
    echo "fuzz: $target found a crash; its input is in fuzz/artifacts/$target/" >&2
    status=1
  else
    grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$ROOT/target/fuzz-$target.log" | tail -1 || true
  fi
done
exit $status
