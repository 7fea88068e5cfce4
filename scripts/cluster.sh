#!/usr/bin/env bash
# custody's cluster topology as plain processes on loopback, without Docker: three
# nats-server nodes (JetStream, sync_interval: always, TLS on client and route links, the
# accounts of deploy/nats/accounts.conf) with custody's streams at three replicas,
# PostgreSQL when its binaries are installed, and optionally custody serve processes.
# docker-compose.yml runs the same topology in containers; streams/cluster_test.go
# (TestClusterLoopbackScript) runs this script.
#
# Usage:
#   scripts/cluster.sh start [--serve N]   build, generate certificates and passwords
#                                          once, start the nodes, provision the streams,
#                                          start PostgreSQL and N custody serve (default 0)
#   scripts/cluster.sh env                 print the environment for custody:
#                                            eval "$(scripts/cluster.sh env)"
#                                            custody publish events.jsonl
#   scripts/cluster.sh status              processes, node health and the streams
#   scripts/cluster.sh stop                stop what start started (by the recorded pids)
#   scripts/cluster.sh clean               stop, then remove the state directory
#   scripts/cluster.sh build [DIR]         only build nats-server and custody (static)
#                                          into DIR
#   scripts/cluster.sh certs DIR           only generate the CA and the node certificate
#   scripts/cluster.sh provision           create (or verify) the streams at R3, as admin
#                                          (custody streams provision --replicas 3)
#
# Environment:
#   CUSTODY_CLUSTER_DIR        state: binaries, certificates, passwords, stores, logs, pids
#                              (default ${TMPDIR:-/tmp}/custody-cluster-UID)
#   CUSTODY_CLUSTER_PORT_BASE  client ports BASE..BASE+2 (default 4222); routes BASE+2000..,
#                              monitoring BASE+4000.. (6222.., 8222..)
#   CUSTODY_CLUSTER_PG_PORT    PostgreSQL's port (default BASE+1211, 5433)
#   CUSTODY_CLUSTER_HTTP_PORT  the first custody serve's HTTP API port (default 8080)
#   CUSTODY_CLUSTER_POSTGRES   0: do not start PostgreSQL (the views stay in SQLite)
#
# Users (deploy/nats/accounts.conf): custody-admin provisions the streams and is used by
# nothing else; custody is the application user, which cannot delete or purge messages,
# nor change or delete streams. Passwords are generated into STATE/secrets.env (0600).
#
# Several custody serve processes sharing one PostgreSQL store (start --serve 2) take
# turns on each projector through leases in the store: one applies, the others stand by
# (docs/adr/0009-ha-projectors.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${CUSTODY_CLUSTER_DIR:-${TMPDIR:-/tmp}/custody-cluster-$(id -u)}"
BASE="${CUSTODY_CLUSTER_PORT_BASE:-4222}"
PG_PORT="${CUSTODY_CLUSTER_PG_PORT:-$((BASE + 1211))}"
HTTP_BASE="${CUSTODY_CLUSTER_HTTP_PORT:-8080}"
BIN="$STATE/bin"
CERTS="$STATE/certs"
NODES=(n1 n2 n3)

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*" >&2; }

client_port() { echo $((BASE + $1)); }
route_port() { echo $((BASE + 2000 + $1)); }
monitor_port() { echo $((BASE + 4000 + $1)); }

urls() { # urls SCHEME USER PASSWORD: every node's client URL, comma-separated
  local i out=""
  for i in 0 1 2; do
    out+="${out:+,}$1://$2:$3@127.0.0.1:$(client_port "$i")"
  done
  echo "$out"
}

# --- build -------------------------------------------------------------------------

cmd_build() {
  local out="${1:-$BIN}" work go_version
  command -v go >/dev/null || die "go is not on PATH"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  export CGO_ENABLED="${CGO_ENABLED:-0}"
  say "building nats-server (the version in go.mod) and custody into $out"
  (cd "$ROOT" && go build -trimpath -ldflags "-s -w" -o "$out/nats-server" github.com/nats-io/nats-server/v2)
  (cd "$ROOT" && go build -trimpath -ldflags "-s -w" -o "$out/custody" ./cmd/custody)
}

# --- certificates and secrets ----------------------------------------------------------

# One CA, and one certificate every node presents, to clients and to other nodes
# (server and client authentication), for the names clients and routes use: n1..n3 in
# docker-compose.yml, 127.0.0.1 and localhost here. ca-bundle.pem is the system's trust
# store plus the CA, for SSL_CERT_FILE (custody trusts the nodes through it).
cmd_certs() {
  local dir="${1:?certs DIR}" ext
  command -v openssl >/dev/null || die "openssl is not on PATH"
  mkdir -p "$dir"
  if [ -s "$dir/node.pem" ] && [ -s "$dir/ca.pem" ]; then
    say "certificates already in $dir"
    return
  fi
  say "generating a CA and the node certificate in $dir"
  ext="$(mktemp)"
  cat >"$ext" <<EOF
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, DNS:n1, DNS:n2, DNS:n3, IP:127.0.0.1
EOF
  (
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca-key.pem"
    openssl req -x509 -new -key "$dir/ca-key.pem" -sha256 -days 825 -subj "/CN=custody cluster CA" -out "$dir/ca.pem"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/node-key.pem"
    openssl req -new -key "$dir/node-key.pem" -subj "/CN=custody nats node" -out "$dir/node.csr"
    openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
      -days 825 -sha256 -extfile "$ext" -out "$dir/node.pem" 2>/dev/null
  )
  rm -f "$ext" "$dir/node.csr" "$dir/ca.srl"
  local system=""
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    if [ -r "$f" ]; then system="$f"; break; fi
  done
  cat ${system:+"$system"} "$dir/ca.pem" >"$dir/ca-bundle.pem"
  chmod 0644 "$dir/ca.pem" "$dir/node.pem" "$dir/ca-bundle.pem"
}

# Passwords: letters and digits starting with a letter (nats-server parses them from the
# environment as configuration values).
secret() { printf 'k%s' "$(openssl rand -hex 20)"; }

ensure_secrets() {
  mkdir -p "$STATE"
  if [ ! -s "$STATE/secrets.env" ]; then
    (
      umask 077
      {
        echo "CUSTODY_ADMIN_PASSWORD=$(secret)"
        echo "CUSTODY_APP_PASSWORD=$(secret)"
        echo "CUSTODY_SYS_PASSWORD=$(secret)"
        echo "CUSTODY_PG_PASSWORD=$(secret)"
        echo "CUSTODY_API_TOKEN=$(secret)"
      } >"$STATE/secrets.env"
    )
  fi
  # shellcheck disable=SC1091
  . "$STATE/secrets.env"
  export CUSTODY_ADMIN_PASSWORD CUSTODY_APP_PASSWORD CUSTODY_SYS_PASSWORD
}

# --- processes --------------------------------------------------------------------------

pidfile() { echo "$STATE/run/$1.pid"; }

running() { # running NAME: the recorded process is alive and is ours
  local f pid
  f="$(pidfile "$1")"
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q "$STATE" "/proc/$pid/cmdline" 2>/dev/null || [ ! -e "/proc/$pid" ]
}

stop_process() { # stop_process NAME: SIGTERM, then SIGKILL after 30 s
  local f pid i
  f="$(pidfile "$1")"
  if ! running "$1"; then rm -f "$f"; return; fi
  pid="$(cat "$f")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$1 (pid $pid) did not stop within 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

node_ready() { # node_ready I: the node's monitoring answers /healthz
  local port
  port="$(monitor_port "$1")"
  if command -v curl >/dev/null; then
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz?js-server-only=true" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

start_node() { # start_node I
  local i="$1" name="${NODES[$1]}" routes="" j
  if running "$name"; then say "$name already running"; return; fi
  for j in 0 1 2; do routes+="${routes:+,}\"nats://127.0.0.1:$(route_port "$j")\""; done
  mkdir -p "$STATE/data/$name" "$STATE/logs" "$STATE/run"
  NATS_NAME="$name" NATS_HOST=127.0.0.1 NATS_PORT="$(client_port "$i")" \
    NATS_HTTP_PORT="$(monitor_port "$i")" NATS_CLUSTER_PORT="$(route_port "$i")" \
    NATS_ROUTES="[$routes]" NATS_STORE_DIR="\"$STATE/data/$name\"" \
    NATS_TLS_CERT="\"$CERTS/node.pem\"" NATS_TLS_KEY="\"$CERTS/node-key.pem\"" NATS_TLS_CA="\"$CERTS/ca.pem\"" \
    setsid nohup "$BIN/nats-server" -c "$ROOT/deploy/nats/node.conf" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  say "$name started (pid $!, client 127.0.0.1:$(client_port "$i"), log $STATE/logs/$name.log)"
}

provision() { # provision [status]: custody streams provision (or status) as the administrator
  local data rc=0
  data="$(mktemp -d)"
  SSL_CERT_FILE="$CERTS/ca-bundle.pem" "$BIN/custody" streams "${1:-provision}" --replicas 3 --data "$data" \
    --nats "$(urls tls custody-admin "$CUSTODY_ADMIN_PASSWORD")" || rc=$?
  rm -rf "$data"
  return "$rc"
}

pg_bin() { # the directory of initdb, pg_ctl and postgres, or nothing
  local d best=""
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && best="$d"
  done
  if [ -z "$best" ] && command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    best="$(dirname "$(command -v pg_ctl)")"
  fi
  echo "$best"
}

pg_dsn() { echo "postgres://custody:$CUSTODY_PG_PASSWORD@127.0.0.1:$PG_PORT/custody?sslmode=disable"; }

start_postgres() {
  local bin
  [ "${CUSTODY_CLUSTER_POSTGRES:-1}" != 0 ] || return 0
  bin="$(pg_bin)"
  if [ -z "$bin" ]; then say "PostgreSQL not installed: the views stay in SQLite"; return 0; fi
  if [ "$(id -u)" = 0 ]; then
    say "PostgreSQL refuses to run as root: not started (run as another user, or give --store yourself)"
    return 0
  fi
  if [ ! -s "$STATE/pg/PG_VERSION" ]; then
    local pw
    pw="$(mktemp)"
    printf '%s\n' "$CUSTODY_PG_PASSWORD" >"$pw"
    "$bin/initdb" -D "$STATE/pg" -U custody --pwfile="$pw" -A scram-sha-256 >"$STATE/logs/postgres-init.log" 2>&1 ||
      { rm -f "$pw"; die "initdb failed: $STATE/logs/postgres-init.log"; }
    rm -f "$pw"
  fi
  if ! "$bin/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1; then
    "$bin/pg_ctl" -D "$STATE/pg" -l "$STATE/logs/postgres.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $STATE/run" start >/dev/null ||
      die "PostgreSQL did not start: $STATE/logs/postgres.log"
    PGPASSWORD="$CUSTODY_PG_PASSWORD" "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U custody custody 2>/dev/null || true
  fi
  touch "$STATE/run/postgres.on"
  say "PostgreSQL on 127.0.0.1:$PG_PORT (database custody)"
}

stop_postgres() {
  local bin
  [ -e "$STATE/run/postgres.on" ] || return 0
  bin="$(pg_bin)"
  [ -n "$bin" ] && "$bin/pg_ctl" -D "$STATE/pg" -m fast stop >/dev/null 2>&1 || true
  rm -f "$STATE/run/postgres.on"
}

custody_env() { # the environment of a custody process (application user)
  echo "CUSTODY_NATS_URL=$(urls tls custody "$CUSTODY_APP_PASSWORD")"
  echo "SSL_CERT_FILE=$CERTS/ca-bundle.pem"
  echo "CUSTODY_SIGNING_KEY=$STATE/keys/custody.key"
  if [ -e "$STATE/run/postgres.on" ]; then echo "CUSTODY_STORE=$(pg_dsn)"; fi
}

start_serve() { # start_serve K: custody serve number K (1-based)
  local k="$1" name="custody$1" port=$((HTTP_BASE + $1 - 1))
  if running "$name"; then say "$name already running"; return; fi
  mkdir -p "$STATE/custody/$name"
  printf 'auditor cluster-script %s\n' "$CUSTODY_API_TOKEN" >"$STATE/custody/tokens"
  chmod 0600 "$STATE/custody/tokens"
  # shellcheck disable=SC2046
  env $(custody_env) setsid nohup "$BIN/custody" serve --data "$STATE/custody/$name" \
    --http "127.0.0.1:$port" --tokens "$STATE/custody/tokens" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  say "$name started (pid $!, HTTP API 127.0.0.1:$port, log $STATE/logs/$name.log)"
}

# --- commands ---------------------------------------------------------------------------

cmd_start() {
  local serve=0 i
  while [ $# -gt 0 ]; do
    case "$1" in
      --serve) serve="${2:?--serve N}"; shift 2 ;;
      *) die "start: unknown argument $1" ;;
    esac
  done
  command -v openssl >/dev/null || die "openssl is not on PATH"
  mkdir -p "$STATE/run" "$STATE/logs"
  if [ ! -x "$BIN/nats-server" ] || [ ! -x "$BIN/custody" ] || [ -n "${CUSTODY_CLUSTER_REBUILD:-}" ]; then
    cmd_build "$BIN"
  fi
  cmd_certs "$CERTS"
  ensure_secrets
  if [ ! -s "$STATE/keys/custody.key" ]; then
    "$BIN/custody" keygen --name custody --out "$STATE/keys" >/dev/null
  fi
  for i in 0 1 2; do start_node "$i"; done
  for i in 0 1 2; do
    local tries=0
    until node_ready "$i"; do
      tries=$((tries + 1))
      if [ "$tries" -gt 300 ] || ! running "${NODES[$i]}"; then
        tail -n 20 "$STATE/logs/${NODES[$i]}.log" >&2 || true
        die "${NODES[$i]} did not come up"
      fi
      sleep 0.1
    done
  done
  say "nodes up; provisioning the streams as custody-admin"
  provision >&2
  start_postgres
  for i in $(seq "$serve"); do start_serve "$i"; done
  echo
  echo "# custody's cluster is running. For custody (the application user):"
  echo "#   eval \"\$($0 env)\""
  custody_env | sed 's/^/#   /'
  echo "# Administrator (provisioning only): $(urls tls custody-admin '$CUSTODY_ADMIN_PASSWORD') with CA $CERTS/ca.pem;"
  echo "# passwords in $STATE/secrets.env"
}

cmd_env() {
  [ -s "$STATE/secrets.env" ] || die "no cluster in $STATE (scripts/cluster.sh start)"
  ensure_secrets
  custody_env | sed "s/^\([A-Z_]*\)=\(.*\)$/export \1='\2'/"
}

cmd_status() {
  local i name rc=0
  for name in "${NODES[@]}" custody1 custody2 custody3; do
    if [ -e "$(pidfile "$name")" ] || [[ "$name" == n* ]]; then
      if running "$name"; then echo "$name running (pid $(cat "$(pidfile "$name")"))"; else echo "$name stopped"; rc=1; fi
    fi
  done
  local healthy=0
  for i in 0 1 2; do
    if node_ready "$i"; then echo "${NODES[$i]} healthy"; healthy=$((healthy + 1)); else echo "${NODES[$i]} not healthy"; rc=1; fi
  done
  if [ "$healthy" -ge 2 ] && [ -s "$STATE/secrets.env" ] && [ -x "$BIN/custody" ]; then
    ensure_secrets
    provision status || rc=1
  fi
  [ -e "$STATE/run/postgres.on" ] && echo "PostgreSQL on 127.0.0.1:$PG_PORT"
  return "$rc"
}

cmd_stop() {
  local name
  for name in custody3 custody2 custody1 n3 n2 n1; do stop_process "$name"; done
  stop_postgres
  say "stopped"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  clean) cmd_stop; rm -rf "$STATE"; say "removed $STATE" ;;
  build) shift; cmd_build "${1:-$BIN}" ;;
  certs) shift; cmd_certs "${1:?certs DIR}" ;;
  provision) ensure_secrets; provision ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
