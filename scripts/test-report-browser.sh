#!/usr/bin/env bash
# The HTML report in a real browser (issue 4 §5). Works on a fresh Debian machine with Rust and
# Node.js; scripts/test.sh calls it.
#
#   1. tools    Debian's chromium (+ fonts-liberation) if /usr/bin/chromium is missing;
#               playwright-core (pinned) from npm into .test-env/report. No browser download.
#   2. build    cargo build (a no-op when the binary is fresh)
#   3. demo     two runs of `mi-assess assess --demo` into one temporary results root; before the
#               second, suppressions.json accepts one finding's risk, so the second report shows
#               a suppressed finding
#   4. browser  tests/report/report_browser_test.mjs opens the second run's report.html in
#               headless Chromium: key content, row click, severity filter, no console errors,
#               no external requests; it saves a full-page screenshot
#
# Artifacts: target/report-screenshot.png (the whole page), target/report-front.png (the top of
# the page, one window high) and target/report-demo.html. With MI_ASSESS_UPDATE_SCREENSHOT=1 the
# top of the page also replaces docs/report-screenshot.png, the README's picture.
# Exit status is non-zero if any step fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ENV_DIR="$ROOT/.test-env/report"
PLAYWRIGHT_CORE_VERSION=1.65.1
CHROMIUM=/usr/bin/chromium
SCREENSHOT="$ROOT/target/report-screenshot.png"
FRONT="$ROOT/target/report-front.png"
REPORT_COPY="$ROOT/target/report-demo.html"

log() { printf '\n==> %s\n' "$*"; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1
  fi
}
die() { echo "test-report-browser: $*" >&2; exit 1; }

log "report: tools"
t=$(now)
if [ ! -x "$CHROMIUM" ]; then
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation
  [ -x "$CHROMIUM" ] || die "apt-get installed chromium but $CHROMIUM is missing"
  echo "chromium installed in $(took "$t")"
fi
"$CHROMIUM" --version 2>/dev/null || true
command -v node >/dev/null 2>&1 || die "node is required (Node.js 20+)"
t=$(now)
if ! grep -q "\"version\": \"$PLAYWRIGHT_CORE_VERSION\"" "$ENV_DIR/node_modules/playwright-core/package.json" 2>/dev/null; then
  npm install --silent --no-audit --no-fund --save-exact --prefix "$ENV_DIR" "playwright-core@$PLAYWRIGHT_CORE_VERSION"
  echo "playwright-core $PLAYWRIGHT_CORE_VERSION installed in $(took "$t")"
fi

log "report: build"
t=$(now)
cargo build --locked --quiet --bin mi-assess
BIN="$ROOT/target/debug/mi-assess"
echo "built in $(took "$t")"

log "report: two demo runs"
t=$(now)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mi-assess-report.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/results"
run_demo() {
  local log_file="$WORK/assess-$1.log"
  if ! "$BIN" assess --demo --out "$OUT" >"$log_file" 2>&1; then
    cat "$log_file" >&2
    die "demo run $1 failed (exit status above)"
  fi
}
run_folders() { find "$OUT/runs" -mindepth 5 -maxdepth 5 -type d 2>/dev/null | sort; }

run_demo 1
run_folders >"$WORK/runs-1"
# The second run accepts the risk of id-mail-archiver's MI-GRAPH-002 finding (for 60 days: an
# acceptance may run at most MI_ASSESS_SUPPRESSION_MAX_DAYS).
EXPIRES=$(date -u -d '+60 days' +%Y-%m-%dT00:00:00Z)
cat >"$OUT/suppressions.json" <<JSON
{"suppressions":[{"ruleId":"MI-GRAPH-002","identityId":"1c2f7a8b-3d4e-4f6a-9b0c-2d3e4f5a6b03","reason":"archive mailbox export approved by CISO","expires":"$EXPIRES"}]}
JSON
run_demo 2
run_folders >"$WORK/runs-2"
RUN2=$(comm -13 "$WORK/runs-1" "$WORK/runs-2" | tail -n 1)
[ -n "$RUN2" ] || die "the second demo run wrote no new run folder under $OUT/runs (runs/{tenant}/{yyyy}/{mm}/{dd}/{runId})"
REPORT="$RUN2/report.html"
if [ ! -f "$REPORT" ]; then
  echo "files in the run folder:" >&2
  ls -l "$RUN2" >&2 || true
  die "mi-assess assess did not write report.html into the run folder ($RUN2)"
fi
grep -q 'data-suppressed="true"' "$REPORT" ||
  die "the second run's report shows no suppressed finding: was $OUT/suppressions.json read? ($REPORT)"
mkdir -p "$ROOT/target"
cp "$REPORT" "$REPORT_COPY"
echo "two demo runs in $(took "$t"); report: ${REPORT#"$WORK"/} ($(wc -c <"$REPORT") bytes)"

log "report: browser"
t=$(now)
PLAYWRIGHT_CORE_DIR="$ENV_DIR/node_modules" CHROMIUM_PATH="$CHROMIUM" \
  node "$ROOT/tests/report/report_browser_test.mjs" "$REPORT" "$SCREENSHOT" "$FRONT"
if [ "${MI_ASSESS_UPDATE_SCREENSHOT:-}" = 1 ]; then
  cp "$FRONT" "$ROOT/docs/report-screenshot.png"
  echo "docs/report-screenshot.png updated"
fi
echo "browser test in $(took "$t"); report copy: ${REPORT_COPY#"$ROOT"/}"
