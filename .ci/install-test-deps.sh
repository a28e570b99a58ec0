#!/usr/bin/env bash
# Installs the external checkers the HTTP integration tests run, when they are
# missing: promtool (Debian package prometheus) checks /metrics, and a headless
# Chromium (package chromium) loads the status page. Idempotent: installs
# nothing when both are present. Debian/Ubuntu only (apt-get); needs root.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-test-deps: promtool and chromium are already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: need root to install ${missing[*]} (run with sudo)" >&2
    exit 1
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

command -v promtool >/dev/null 2>&1 || { echo "install-test-deps: promtool still missing" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || { echo "install-test-deps: chromium still missing" >&2; exit 1; }
