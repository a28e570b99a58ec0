#!/usr/bin/env bash
# Runs every test with what the tests need: installs promtool, headless
# Chromium, a Nagios plugin, Alertmanager and python3-jsonschema when they
# are missing (.ci/install-test-deps.sh: Debian packages, needs root), then
# `cargo test --workspace`. Extra arguments go to cargo
# test, e.g. `scripts/test.sh -- restart` for one group.
#
# Without root, run `cargo test --workspace` yourself: the checks that need
# those tools say SKIPPED when they are missing (and fail when CI is set).
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/install-test-deps.sh
cargo test --workspace "$@"
