#!/usr/bin/env bash
# Installs procjon and/or procjonagent with their systemd units: the
# binaries, the units, the system user procjon, its directories and
# commented environment files. Idempotent: a second run changes nothing.
# Never overwrites certificates, the state directory or an environment file;
# binaries and units are replaced when they differ (an upgrade).
#
#   scripts/install.sh [--prefix DIR] [--dry-run] [--daemon-only | --agent-only] [--from DIR]
#
#   --prefix DIR    root of the install (default /): DIR/usr/local/bin,
#                   DIR/etc/procjon, DIR/etc/systemd/system, DIR/var/lib/procjon.
#                   With a DIR other than /, no user is created and no
#                   owner is changed (do that on the target system), and
#                   systemd is not told.
#   --dry-run       print what would be done; change nothing
#   --daemon-only   only procjon and procjon.service
#   --agent-only    only procjonagent and procjonagent@.service (a watched host)
#   --from DIR      where the binaries are (default: this script's directory
#                   if they are there, as in dist/, else dist/ of the checkout)
#
# Needs root for the default prefix. Certificates go in /etc/procjon by hand
# (see "Deploy on a small VM" in README.md); this script only says which are missing.
set -euo pipefail

prefix=/
dry_run=0
daemon=1
agent=1
from=""
here=$(cd "$(dirname "$0")" && pwd)

usage_error() {
  echo "install.sh: $1 (see --help)" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || usage_error "--prefix needs a DIR"; prefix=$2; shift 2 ;;
    --from) [ $# -ge 2 ] || usage_error "--from needs a DIR"; from=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --daemon-only) agent=0; shift ;;
    --agent-only) daemon=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
[ "$daemon" -eq 1 ] || [ "$agent" -eq 1 ] || usage_error "--daemon-only and --agent-only exclude each other"

[ -n "$prefix" ] || usage_error "--prefix needs a DIR (/ for the system itself)"

# The install root without its trailing slash: "" for /.
case $prefix in
  /*) ;;
  *) prefix=$(pwd)/$prefix ;;
esac
root=${prefix%/}
while [ "${root%/}" != "$root" ]; do root=${root%/}; done
system=0
[ -n "$root" ] || system=1

if [ -z "$from" ]; then
  if [ -x "$here/procjon" ] || [ -x "$here/procjonagent" ]; then
    from=$here
  else
    from=$here/../dist
  fi
fi
units=$here/systemd

bins=()
unit_files=()
[ "$daemon" -eq 1 ] && bins+=(procjon) && unit_files+=(procjon.service)
[ "$agent" -eq 1 ] && bins+=(procjonagent) && unit_files+=(procjonagent@.service)

for bin in "${bins[@]}"; do
  [ -x "$from/$bin" ] || { echo "install.sh: no executable $from/$bin; run scripts/build-static.sh first, or give --from DIR" >&2; exit 2; }
done
for unit in "${unit_files[@]}"; do
  [ -f "$units/$unit" ] || { echo "install.sh: missing $units/$unit (keep the systemd/ directory next to install.sh)" >&2; exit 2; }
done
if [ "$system" -eq 1 ] && [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: installing into / needs root: run it with sudo (or try --dry-run, or --prefix DIR)" >&2
  exit 2
fi

changes=0
updates=0
if [ "$dry_run" -eq 1 ]; then
  echo "install.sh: dry run into $prefix: nothing is changed"
fi

# say VERB PATH [NOTE]: one step, done or (dry run) planned. The verbs
# create, install, update and run change something and are counted; keep,
# same, skip, missing and warning don't.
say() {
  local verb=$1 path=$2 note=${3:-}
  case $verb in
    create|install|update|run)
      changes=$((changes + 1))
      [ "$verb" != update ] || updates=$((updates + 1))
      [ "$dry_run" -eq 0 ] || verb="would $verb"
      ;;
  esac
  printf '  %-14s %s%s\n' "$verb" "$path" "${note:+ ($note)}"
}

# act CMD...: runs a command unless this is a dry run.
act() {
  if [ "$dry_run" -eq 0 ]; then
    "$@"
  fi
}

# owner OWNER:GROUP PATH: sets the owner on the real system only.
owner() {
  if [ "$system" -eq 1 ]; then
    act chown "$1" "$2"
  fi
}

# The system user procjon, which runs the daemon and the agents.
if [ "$system" -eq 1 ]; then
  if getent passwd procjon >/dev/null; then
    say keep "user procjon" "exists"
  else
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    command -v useradd >/dev/null || { echo "install.sh: useradd not found; create a system user procjon by hand and run again" >&2; exit 2; }
    say create "user procjon" "system user, no login, home /var/lib/procjon"
    act useradd --system --user-group --no-create-home --home-dir /var/lib/procjon --shell "$nologin" procjon
  fi
else
  say skip "user procjon" "--prefix: create it on the target system"
fi

# directory PATH MODE OWNER: made if missing; an existing one is left as it is.
directory() {
  local path=$root$1
  if [ -d "$path" ]; then
    say keep "$path/" "exists"
  else
    local who=""
    [ "$system" -eq 0 ] || who=$3
    say create "$path/" "mode $2${who:+, $who}"
    act mkdir -p "$path"
    act chmod "$2" "$path"
    [ -z "$3" ] || owner "$3" "$path"
  fi
}

# copy SOURCE DEST MODE: installs or updates a file we ship (binary, unit),
# through a temporary file and a rename, so that a running binary is
# replaced, not overwritten.
copy() {
  local source=$1 dest=$root$2 mode=$3
  if [ -f "$dest" ] && cmp -s "$source" "$dest"; then
    say same "$dest" "up to date"
    return
  fi
  local verb=install
  [ ! -e "$dest" ] || verb=update
  local note=""
  if [ "$mode" = 0755 ]; then
    note=$("$source" --version 2>/dev/null | head -n 1 || true)
  fi
  say "$verb" "$dest" "$note"
  act cp "$source" "$dest.install-tmp"
  act chmod "$mode" "$dest.install-tmp"
  act mv -f "$dest.install-tmp" "$dest"
}

# template DEST TEXT: a commented file for the operator, written only if
# there is none (it may hold secrets: mode 0640, group procjon).
template() {
  local dest=$root$1 text=$2
  if [ -e "$dest" ]; then
    say keep "$dest" "exists, not overwritten"
    return
  fi
  if [ "$system" -eq 1 ]; then
    say create "$dest" "mode 0640, root:procjon"
  else
    say create "$dest" "mode 0640"
  fi
  if [ "$dry_run" -eq 0 ]; then
    (umask 027 && printf '%s\n' "$text" >"$dest")
    chmod 0640 "$dest"
    owner root:procjon "$dest"
  fi
}

directory /usr/local/bin 0755 ""
directory /etc/systemd/system 0755 ""
directory /etc/procjon 0750 root:procjon
if [ "$daemon" -eq 1 ]; then
  # systemd's StateDirectory= would make it too; making it now lets the
  # operator put a state file there before the first start.
  directory /var/lib/procjon 0750 procjon:procjon
fi

updated_before=$updates
for bin in "${bins[@]}"; do
  copy "$from/$bin" "/usr/local/bin/$bin" 0755
done
binaries_updated=$((updates - updated_before))
units_before=$changes
for unit in "${unit_files[@]}"; do
  copy "$units/$unit" "/etc/systemd/system/$unit" 0644
done
units_changed=$((changes - units_before))

if [ "$daemon" -eq 1 ]; then
  template /etc/procjon/procjon.env "# procjon's settings; they override the Environment= lines of
# procjon.service. A flag in ExecStart would win over both.
# The Slack incoming webhook (a secret). Without it, notifications go to
# the journal (standard output).
#PROCJON_SLACK_WEBHOOK=https://hooks.slack.com/services/...
# A dead man's switch (healthchecks.io, Uptime Kuma push, ...) that hears
# from procjon every minute while it is healthy (also a secret).
#PROCJON_HEARTBEAT_URL=https://hc-ping.com/...
# Where agents connect (default in the unit: 0.0.0.0:8080; [::]:8080 adds IPv6).
#PROCJON_ENDPOINT=0.0.0.0:8080
# The status page, JSON API and metrics: plain HTTP, keep it on loopback or a
# private network (off turns it off).
#PROCJON_HTTP=127.0.0.1:9090
#PROCJON_LOG_LEVEL=info"
fi
if [ "$agent" -eq 1 ]; then
  template /etc/procjon/agent.env "# Settings shared by every procjonagent@NAME on this host; they override
# the Environment= lines of procjonagent@.service. Per instance:
# /etc/procjon/agent-NAME.env (PROCJONAGENT_ARGS, PROCJONAGENT_SERVICE).
# procjon's address; its certificate must be valid for the host name.
#PROCJONAGENT_ENDPOINT=monitor.example.com:8080
#PROCJONAGENT_ROOT_CERT=/etc/procjon/ca.pem
#PROCJONAGENT_CERT=/etc/procjon/procjonagent.pem
#PROCJONAGENT_KEY_CERT=/etc/procjon/procjonagent.key
#PROCJONAGENT_LOG_LEVEL=info"
fi

# readable_by_procjon PATH: whether the user procjon may read PATH.
readable_by_procjon() {
  local user group mode
  read -r user group mode < <(stat -c '%U %G %a' "$1")
  mode=$((8#$mode))
  if [ "$user" = procjon ]; then
    (( mode & 8#400 ))
  elif [ "$group" = procjon ]; then
    (( mode & 8#040 ))
  else
    (( mode & 8#004 ))
  fi
}

# Certificates: never made or changed here, only checked.
certs=(ca.pem)
[ "$daemon" -eq 1 ] && certs+=(procjon.pem procjon.key)
[ "$agent" -eq 1 ] && certs+=(procjonagent.pem procjonagent.key)
for cert in "${certs[@]}"; do
  path=$root/etc/procjon/$cert
  if [ ! -e "$path" ]; then
    say missing "$path" "copy it from the machine that holds the CA"
  elif [ "$system" -eq 1 ] && getent passwd procjon >/dev/null && ! readable_by_procjon "$path"; then
    say warning "$path" "user procjon can't read it: chown root:procjon $path && chmod 0640 $path"
  else
    say keep "$path" "exists, not overwritten"
  fi
done
if [ -e "$root/etc/procjon/ca.key" ]; then
  say warning "$root/etc/procjon/ca.key" "the CA's private key does not belong on a server: move it off this machine"
fi

if [ "$system" -eq 1 ] && [ "$units_changed" -gt 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  say run "systemctl daemon-reload"
  act systemctl daemon-reload
fi

counted="$changes changes"
[ "$changes" -ne 1 ] || counted="1 change"
if [ "$dry_run" -eq 1 ]; then
  echo "install.sh: dry run: $counted planned, nothing changed"
  exit 0
fi
echo "install.sh: done, $counted"
if [ "$system" -eq 1 ] && [ "$binaries_updated" -gt 0 ]; then
  running=()
  [ "$daemon" -eq 0 ] || running+=(procjon)
  [ "$agent" -eq 0 ] || running+=("'procjonagent@*'")
  echo "  next: to run the new binaries: systemctl restart ${running[*]} (agents reconnect by themselves)"
elif [ "$system" -eq 1 ] && [ "$changes" -gt 0 ]; then
  [ "$daemon" -eq 0 ] || echo "  next: put the certificates in /etc/procjon, the webhook in /etc/procjon/procjon.env, then: systemctl enable --now procjon"
  [ "$agent" -eq 0 ] || echo "  next: set PROCJONAGENT_ENDPOINT in /etc/procjon/agent.env, then: systemctl enable --now procjonagent@ping"
fi
