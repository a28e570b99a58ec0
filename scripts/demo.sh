#!/usr/bin/env bash
# The main job, end to end on one machine: builds procjon, makes development
# certificates if missing, starts the daemon with notifications on standard
# output, runs a client that registers a service and pings it (first "ok",
# then "degraded"), stops the client, shows the "not available" message after
# the timeout, and shuts everything down.
#
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building procjon (release)"
cargo build --release --quiet --bin procjon
bin=target/release/procjon

[ -f .certs/procjon.pem ] || { say "making development certificates in .certs"; scripts/gen-certs.sh .certs; }

work=$(mktemp -d)
daemon_pid=""
# Stops the daemon and removes the work dir. The script's exit status stays
# the one it had when it ended: the daemon's own status (143 after the kill)
# must not become it.
cleanup() {
  local status=$?
  if [ -n "$daemon_pid" ]; then
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

say "starting procjon (no Slack webhook: notifications are printed below)"
"$bin" -e 127.0.0.1:0 --http 127.0.0.1:0 --state "$work/state.jsonl" >"$work/notifications" 2>"$work/log" &
daemon_pid=$!
for _ in $(seq 100); do
  addr=$(sed -n 's/.*listening on //p' "$work/log" | head -n 1)
  [ -n "$addr" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/log"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "procjon did not start:"; cat "$work/log"; exit 1; }
http=$(sed -n 's/.*http status on //p' "$work/log" | head -n 1)
sed 's/^/  log: /' "$work/log"
tail -n +1 -f "$work/notifications" | sed -u 's/^/  SLACK> /' &
tail_pid=$!

say "a client registers demo-web (timeout 2 s, statuses ok/degraded) and pings it for 3 s"
{
  echo '{"type":"register","service":"demo-web","timeout_s":2,"statuses":["ok","degraded"]}'
  for status in 0 0 0 1 1 1; do
    sleep 0.5
    echo "{\"type\":\"ping\",\"service\":\"demo-web\",\"status\":$status}"
  done
  sleep 0.3
} | openssl s_client -connect "$addr" -servername localhost -quiet -no_ign_eof -verify_return_error \
      -CAfile .certs/ca.pem -cert .certs/procjonagent.pem -key .certs/procjonagent.key 2>/dev/null \
  | sed -u 's/^/  reply: /'

say "procjon status (from the HTTP API on $http)"
"$bin" status --http "$http" | sed 's/^/  /' || true

say "the client stopped; waiting for the timeout"
for _ in $(seq 50); do
  grep -q "not available" "$work/notifications" && break
  sleep 0.1
done
sleep 0.2
kill "$tail_pid" 2>/dev/null || true

say "procjon status after the timeout (exit code 1: something is down)"
"$bin" status --http "$http" | sed 's/^/  /' || echo "  (exit code $?)"

say "state file ($work/state.jsonl)"
sed 's/^/  /' "$work/state.jsonl"
grep -q "demo-web is not available" "$work/notifications" || { echo "expected a 'not available' message"; exit 1; }
say "done: procjon announced availability, the status change and the outage"
