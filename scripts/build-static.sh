#!/usr/bin/env bash
# Builds procjon and procjonagent as fully static x86_64 Linux executables
# (glibc, linked with -C target-feature=+crt-static), stripped, into dist/,
# checks that they are static and that they run, and puts install.sh and the
# systemd units next to them: dist/ is what a server needs.
#
#   scripts/build-static.sh [--out DIR]      (DIR defaults to dist)
#
# The binaries need no Rust toolchain and no shared library on the machine
# they are copied to; any x86_64 Linux kernel 3.2 or later runs them. The
# release profile (Cargo.toml) gives LTO, one codegen unit and strip, and
# keeps panic = "unwind" so a failing connection thread can't end the daemon.
#
# Needs: a Rust toolchain with the x86_64-unknown-linux-gnu target (the usual
# one on x86_64 Linux), glibc's static libraries (Debian/Ubuntu: libc6-dev),
# a C compiler (for ring) and readelf (binutils, which comes with it). Takes
# a few minutes.
#
# Name resolution: static glibc has the files and dns lookups built in, but
# would load any other source named in /etc/nsswitch.conf (resolve,
# myhostname, mdns, ...) from the host's glibc, possibly another version. So
# the static binaries look host names up in /etc/hosts and DNS
# (/etc/resolv.conf) only, whatever nsswitch.conf says (src/static_nss.rs).
# A webhook or procjon host name must be in one of the two: where a server's
# names are anyway.
set -euo pipefail

out=dist
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:-}; shift 2 || { echo "build-static.sh: --out needs a DIR" >&2; exit 2; } ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build-static.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu

if [ "$(uname -m)" != x86_64 ] || [ "$(uname -s)" != Linux ]; then
  echo "build-static.sh: builds x86_64 Linux binaries on x86_64 Linux; this is $(uname -s) $(uname -m)" >&2
  exit 2
fi
for tool in cargo readelf; do
  command -v "$tool" >/dev/null || { echo "build-static.sh: $tool not found; install it" >&2; exit 2; }
done

# --target keeps RUSTFLAGS away from build scripts and proc macros, which
# must stay dynamic host programs. Linking a static getaddrinfo makes ld warn
# that it needs glibc's shared NSS modules at run time; see above for why
# that is fine, and tests/integration/deploy.rs for the test.
echo "build-static.sh: cargo build --release --target $target --workspace (static)"
start=$(date +%s)
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" --workspace --bins
echo "build-static.sh: built in $(( $(date +%s) - start )) s"

mkdir -p "$out"
failed=0
for bin in procjon procjonagent; do
  built="target/$target/release/$bin"
  # Copy to a temporary name and rename, so a running copy is never
  # overwritten in place ("text file busy").
  cp "$built" "$out/.$bin.tmp"
  mv -f "$out/.$bin.tmp" "$out/$bin"
  # Static: no program interpreter (ld.so) and no shared library needed.
  # Stripped: no symbol table.
  if readelf -lW "$out/$bin" | grep -q INTERP || readelf -dW "$out/$bin" | grep -q NEEDED; then
    echo "build-static.sh: $out/$bin is not static:" >&2
    readelf -dW "$out/$bin" | grep NEEDED >&2 || true
    failed=1
  fi
  if readelf -SW "$out/$bin" | grep -q '\.symtab'; then
    echo "build-static.sh: $out/$bin is not stripped" >&2
    failed=1
  fi
  # The same, as file(1) and ldd see it, where they are installed.
  if command -v file >/dev/null; then
    echo "  $(file -b "$out/$bin")"
  fi
  if command -v ldd >/dev/null && libs=$(ldd "$out/$bin" 2>&1) && [[ $libs == *"=>"* ]]; then
    echo "build-static.sh: ldd lists shared libraries for $out/$bin:" >&2
    echo "$libs" >&2
    failed=1
  fi
  if ! version=$("$out/$bin" --version) || [[ $version != "$bin "* ]]; then
    echo "build-static.sh: $out/$bin --version failed: ${version:-no output}" >&2
    failed=1
  fi
  printf '%-20s %9s bytes  %s\n' "$out/$bin" "$(wc -c <"$out/$bin")" "$version"
done
if [ "$failed" -ne 0 ]; then
  exit 1
fi

# What a server needs besides the binaries, so that copying $out is enough:
# $out/install.sh finds the binaries next to it.
cp scripts/install.sh "$out/install.sh"
mkdir -p "$out/systemd"
cp scripts/systemd/procjon.service scripts/systemd/procjonagent@.service "$out/systemd/"
echo "build-static.sh: $out/procjon and $out/procjonagent are static and run; copy $out to the server and run $out/install.sh there"
