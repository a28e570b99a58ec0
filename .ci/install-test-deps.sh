#!/usr/bin/env bash
# Installs the external checkers the integration tests run, when they are
# missing: promtool (Debian package prometheus) checks /metrics, a headless
# Chromium (package chromium) loads the status page, and the agent's exec
# tests run a real Nagios plugin, /usr/lib/nagios/plugins/check_dummy
# (package monitoring-plugins-basic); the sink tests run a real Alertmanager
# cluster (package prometheus-alertmanager) and check the JSON webhook's
# bodies against docs/webhook-json.schema.json with python3-jsonschema.
# Idempotent: installs nothing when all are present. Debian/Ubuntu only
# (apt-get); needs root.
set -euo pipefail

check_dummy=/usr/lib/nagios/plugins/check_dummy

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x "$check_dummy" ] || missing+=(monitoring-plugins-basic)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || missing+=(prometheus-alertmanager)
python3 -c 'import jsonschema' >/dev/null 2>&1 || missing+=(python3-jsonschema)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-test-deps: promtool, chromium, check_dummy, alertmanager and python3-jsonschema are already installed"
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
[ -x "$check_dummy" ] || { echo "install-test-deps: $check_dummy still missing" >&2; exit 1; }
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || { echo "install-test-deps: prometheus-alertmanager still missing" >&2; exit 1; }
python3 -c 'import jsonschema' >/dev/null 2>&1 || { echo "install-test-deps: python3-jsonschema still missing" >&2; exit 1; }
