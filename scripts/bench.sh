#!/usr/bin/env bash
# Runs the load benchmark (issue 5): procjon beside a bare rustls line-ack
# baseline, in release mode, and prints a table of procjon, baseline and ratio.
#
#   scripts/bench.sh                       every scenario (about 15 minutes)
#   scripts/bench.sh --scenario NAME       one scenario (--list shows them)
#   scripts/bench.sh --quick               a scaled-down smoke run (seconds)
#
# Raw figures go to target/bench/results.jsonl (results-quick.jsonl with
# --quick), one JSON object per line; a full run of every scenario also
# redraws docs/bench-throughput.svg. Other options: --out FILE, --svg FILE.
# Run it on an otherwise quiet machine: figures are compared within one run,
# but a busy neighbour still blurs them.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --quiet
exec cargo bench --quiet --bench load -- "$@"
