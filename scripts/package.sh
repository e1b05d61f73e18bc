#!/usr/bin/env bash
# Build the Azure Functions deployment zip for mi-assess.
#
#   scripts/package.sh                      build the static x86_64-unknown-linux-musl binary (profile dist),
#                                           then write dist/mi-assess.zip
#   scripts/package.sh --binary PATH        package an already-built binary (no build), e.g. target/debug/mi-assess
#   scripts/package.sh --output FILE.zip    write the zip somewhere else
#
# Zip layout (the root is the function app root, wwwroot):
#   host.json                 from the repository root
#   mi-assess                 the handler (customHandler.description.defaultExecutablePath), mode 0755 stored
#                             in the zip: Flex mounts the package read-only, so it cannot be chmod-ed later
#   <function>/function.json  one folder per function, from functions/<function>/function.json
# Nothing else (no target/, no local.settings.json).
#
# Needs: bash, python3 (stdlib only). For the build also cargo, rustup and musl-tools (musl-gcc); the script
# installs the rustup target and, as root or with sudo, Debian/Ubuntu's musl-tools when they are missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=x86_64-unknown-linux-musl
PROFILE=dist
BINARY=""
OUTPUT="$ROOT/dist/mi-assess.zip"

die() { printf 'package.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'package.sh: %s\n' "$*" >&2; }

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; BINARY=$2; shift 2 ;;
    --binary=*) BINARY=${1#*=}; shift ;;
    --output|-o) [ $# -ge 2 ] || die "--output needs a path"; OUTPUT=$2; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

command -v python3 >/dev/null 2>&1 || die "python3 is required to assemble the zip"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

ensure_musl_gcc() {
  command -v musl-gcc >/dev/null 2>&1 && return 0
  say "musl-gcc not found: installing musl-tools with apt-get"
  if command -v apt-get >/dev/null 2>&1; then
    if as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >&2 \
      || { as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >&2; }; then
      command -v musl-gcc >/dev/null 2>&1 && return 0
    fi
  fi
  die "musl-gcc (package musl-tools) is missing and could not be installed.
  Install it yourself (Debian/Ubuntu: sudo apt-get install musl-tools; Fedora: sudo dnf install musl-gcc),
  or package a binary you built elsewhere: scripts/package.sh --binary PATH"
}

ensure_rust_target() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs), or use --binary PATH"
  if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
      say "installing the rustup target $TARGET"
      rustup target add "$TARGET" >&2 || die "could not install the Rust standard library for $TARGET (rustup target add $TARGET failed: offline?).
  Run it with network access once, or package a binary you built elsewhere: scripts/package.sh --binary PATH"
    fi
  elif ! rustc --print target-libdir --target "$TARGET" >/dev/null 2>&1 \
       || [ ! -d "$(rustc --print target-libdir --target "$TARGET")" ]; then
    die "the Rust target $TARGET is not installed and rustup is not available to add it; use --binary PATH"
  fi
}

if [ -z "$BINARY" ]; then
  ensure_musl_gcc
  ensure_rust_target
  locked=()
  [ -f "$ROOT/Cargo.lock" ] && locked=(--locked)
  say "building: cargo build ${locked[*]} --profile $PROFILE --target $TARGET --bin mi-assess"
  start=$(date +%s)
  # musl-gcc compiles any C in the dependency tree (e.g. the TLS crypto provider) against musl.
  ( cd "$ROOT" && CC_x86_64_unknown_linux_musl=musl-gcc \
      cargo build "${locked[@]}" --profile "$PROFILE" --target "$TARGET" --bin mi-assess >&2 ) \
    || die "cargo build for $TARGET failed (see the compiler output above)"
  say "build took $(( $(date +%s) - start )) s"
  BINARY="$ROOT/target/$TARGET/$PROFILE/mi-assess"
fi

[ -f "$BINARY" ] || die "binary not found: $BINARY"

python3 - "$ROOT" "$BINARY" "$OUTPUT" <<'PY'
import hashlib, json, os, stat, sys, time, zipfile
from pathlib import Path

root, binary, output = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

def fail(msg):
    sys.exit(f"package.sh: error: {msg}")

host_json = root / "host.json"
if not host_json.is_file():
    fail(f"{host_json} not found")
host = json.loads(host_json.read_text())
exe = host.get("customHandler", {}).get("description", {}).get("defaultExecutablePath", "")
if not exe or "/" in exe:
    fail(f"host.json customHandler.description.defaultExecutablePath must be a file name at the app root, got {exe!r}")

functions = sorted(p.parent.name for p in (root / "functions").glob("*/function.json"))
if not functions:
    fail("no functions/<name>/function.json found")
for name in functions:
    json.loads((root / "functions" / name / "function.json").read_text())  # must be valid JSON

data = binary.read_bytes()
if data[:4] != b"\x7fELF":
    fail(f"{binary} is not an ELF executable")

def is_static(elf):
    # 64-bit little-endian ELF: a PT_INTERP program header means a dynamic loader (glibc) is needed.
    if elf[4] != 2 or elf[5] != 1:
        return None
    phoff = int.from_bytes(elf[0x20:0x28], "little")
    phentsize = int.from_bytes(elf[0x36:0x38], "little")
    phnum = int.from_bytes(elf[0x38:0x3A], "little")
    for i in range(phnum):
        off = phoff + i * phentsize
        if int.from_bytes(elf[off:off + 4], "little") == 3:  # PT_INTERP
            return False
    return True

static = is_static(data)
if static is False:
    print(f"package.sh: warning: {binary} is dynamically linked (glibc build): fine for layout tests, "
          "deploy a static x86_64-unknown-linux-musl build", file=sys.stderr)

# (path in zip, content, mode). Fixed timestamps keep the zip reproducible.
entries = [("host.json", host_json.read_bytes(), 0o644), (exe, data, 0o755)]
entries += [(f"{n}/function.json", (root / "functions" / n / "function.json").read_bytes(), 0o644) for n in functions]

epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "1577836800"))  # 2020-01-01T00:00:00Z
date_time = time.gmtime(max(epoch, 315532800))[:6]

output.parent.mkdir(parents=True, exist_ok=True)
tmp = output.with_name(output.name + ".tmp")
with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
    for name, content, mode in entries:
        info = zipfile.ZipInfo(name, date_time=date_time)
        info.create_system = 3  # Unix: extractors honour the mode in external_attr
        info.external_attr = (stat.S_IFREG | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, content)
os.replace(tmp, output)

with zipfile.ZipFile(output) as zf:
    print(f"{output}  ({output.stat().st_size} bytes, sha256 {hashlib.sha256(output.read_bytes()).hexdigest()})")
    print(f"{'mode':<11} {'octal':>7} {'size':>10}  path")
    for info in zf.infolist():
        mode = info.external_attr >> 16
        print(f"{stat.filemode(mode):<11} {mode & 0o7777:>7o} {info.file_size:>10}  {info.filename}")
    kind = {True: "static", False: "dynamic (glibc)", None: "unknown"}[static]
    print(f"{len(zf.infolist())} files; handler '{exe}' is {kind} ELF; functions: {', '.join(functions)}")
PY
