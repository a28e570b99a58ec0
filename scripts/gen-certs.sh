#!/usr/bin/env bash
# Makes development certificates for procjon and procjonagent with the openssl CLI:
# a CA, a server certificate and an agent (client) certificate, all ECDSA P-256.
#
#   scripts/gen-certs.sh [DIR]                (DIR defaults to .certs)
#   scripts/gen-certs.sh [DIR] --agent NAME   a further agent certificate
#
# --agent NAME issues NAME.pem and NAME.key (CN=NAME, DNS:NAME) from the CA
# already in DIR, so each host or team gets its own identity: procjon lets
# only the identity that registered a service register or ping it again.
#
# Files (the original procjon's names): ca.pem ca.key procjon.pem procjon.key
# procjonagent.pem procjonagent.key (and ca.srl, openssl's serial counter).
# Keys are readable by their owner only.
# Existing files are kept: delete DIR (or the files) to make new ones.
#
# The server certificate is valid for localhost, 127.0.0.1 and ::1, plus the
# comma-separated names in PROCJON_CERT_NAMES (DNS names or IP addresses), e.g.
#   PROCJON_CERT_NAMES=monitor.example.com,10.0.0.5 scripts/gen-certs.sh
set -euo pipefail

dir=.certs
agent=""
while [ $# -gt 0 ]; do
  case $1 in
    --agent) agent=${2:-}; shift 2 || { echo "gen-certs.sh: --agent needs a NAME" >&2; exit 2; } ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "gen-certs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
days=${PROCJON_CERT_DAYS:-825}

command -v openssl >/dev/null || { echo "gen-certs.sh: openssl not found; install it (e.g. apt-get install openssl)" >&2; exit 2; }
mkdir -p "$dir"
umask 077

# new_key FILE: an ECDSA P-256 key in PKCS#8 PEM.
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# sign NAME SUBJECT EXTENSIONS: a certificate NAME.pem for key NAME.key, signed by the CA.
sign() {
  local name=$1 subject=$2 ext=$3
  local csr ext_file
  csr=$(mktemp) ext_file=$(mktemp)
  printf '%s\n' "$ext" >"$ext_file"
  openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$csr"
  openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ext_file" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$csr" "$ext_file"
  chmod 644 "$dir/$name.pem"
}

if [ -n "$agent" ]; then
  if ! [[ $agent =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
    echo "gen-certs.sh: agent name '$agent' must be letters, digits, '.', '_' or '-' (it becomes a file name and a DNS name)" >&2
    exit 2
  fi
  if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
    echo "gen-certs.sh: no CA in $dir (ca.pem and ca.key); run scripts/gen-certs.sh $dir first, or point at the directory that holds the CA" >&2
    exit 2
  fi
  if [ -f "$dir/$agent.pem" ]; then
    echo "gen-certs.sh: $dir/$agent.pem exists; delete it first to issue a new one" >&2
    exit 2
  fi
  new_key "$dir/$agent.key"
  sign "$agent" "/CN=$agent" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=DNS:$agent"
  echo "made $dir/$agent.pem and $dir/$agent.key (identity $agent)"
  exit 0
fi

if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
  new_key "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=procjon development CA" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"
  chmod 644 "$dir/ca.pem"
  echo "made $dir/ca.pem (keep $dir/ca.key off the servers)"
fi

if [ ! -f "$dir/procjon.pem" ] || [ ! -f "$dir/procjon.key" ]; then
  sans="DNS:localhost,IP:127.0.0.1,IP:::1"
  IFS=',' read -r -a extra <<<"${PROCJON_CERT_NAMES:-}"
  for name in "${extra[@]}"; do
    name=$(echo "$name" | tr -d '[:space:]')
    [ -n "$name" ] || continue
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then sans="$sans,IP:$name"; else sans="$sans,DNS:$name"; fi
  done
  new_key "$dir/procjon.key"
  sign procjon "/CN=procjon" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$sans"
  echo "made $dir/procjon.pem for $sans"
fi

if [ ! -f "$dir/procjonagent.pem" ] || [ ! -f "$dir/procjonagent.key" ]; then
  new_key "$dir/procjonagent.key"
  sign procjonagent "/CN=procjonagent" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=DNS:procjonagent"
  echo "made $dir/procjonagent.pem"
fi
