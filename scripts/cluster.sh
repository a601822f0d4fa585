#!/usr/bin/env bash
# A local cluster on this machine, from the Debian packages (postgresql, redis-server,
# nginx), for tests and demos:
#
#   scripts/cluster.sh up [--workers N] [--port P] [--plain-http] [--extra FILE]
#   scripts/cluster.sh down
#
# `up` starts PostgreSQL and Redis on free loopback ports, N workers (`avatar-agent
# serve`, 2 by default) and nginx in front on port P (8443; 8080 with --plain-http),
# with TLS from a self-signed certificate unless --plain-http, and prints the front's
# URL. The shared config goes to var/cluster/config.yaml (so `avatar-agent operators
# add NAME --config var/cluster/config.yaml` reaches the cluster's PostgreSQL), each
# worker's to var/cluster/wI.yaml; --extra FILE is merged into every worker's config.
# `down` stops everything `up` started; the database stays in var/cluster/pg for the
# next `up` (delete var/cluster to start afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${AVATAR_CLUSTER_DIR:-$ROOT/var/cluster}  # a test gives its own
PY=$ROOT/.venv/bin/python
AGENT=$ROOT/.venv/bin/avatar-agent

die() { echo "cluster.sh: $*" >&2; exit 1; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_bin() {
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] || die "PostgreSQL not found: apt-get install postgresql"
  echo "$d"
}
# PostgreSQL refuses to run as root: as root its files belong to the package's user
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
wait_http() {  # URL SECONDS LOG
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    if "$PY" - "$1" <<'PY' 2>/dev/null; then return 0; fi
import ssl, sys, urllib.request
ctx = ssl._create_unverified_context()
urllib.request.urlopen(sys.argv[1], timeout=2, context=ctx).read()
PY
    sleep 0.2
  done
  echo "--- $3" >&2; tail -n 40 "$3" >&2 || true
  die "$1 did not answer within $2 s"
}

up() {
  local workers=2 port="" plain=0 extra=""
  while [ $# -gt 0 ]; do
    case $1 in
      --workers) workers=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --plain-http) plain=1; shift ;;
      --extra) extra=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ "$workers" -ge 1 ] 2>/dev/null || die "--workers needs a number >= 1"
  [ -n "$port" ] || port=$([ $plain = 1 ] && echo 8080 || echo 8443)
  [ -e "$DIR/up" ] && die "already up (scripts/cluster.sh down first)"
  command -v redis-server >/dev/null || die "redis-server not found: apt-get install redis-server"
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || die "nginx not found: apt-get install nginx"
  mkdir -p "$DIR/pg" "$DIR/nginx/tmp" "$DIR/redis"
  chmod 0777 "$DIR/nginx/tmp"  # nginx's workers run as nobody when started as root
  touch "$DIR/up"

  # PostgreSQL: a cluster of its own, kept between ups
  local bin; bin=$(pg_bin)
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR/pg"
  if [ ! -e "$DIR/pg/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$DIR/pg/data" -U avatar --auth=trust -E UTF8 >/dev/null
  fi
  local pgport rport; pgport=$(free_port); rport=$(free_port)
  as_pg "$bin/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/pg.log" -w -t 60 \
    -o "-p $pgport -k $DIR/pg -c listen_addresses=127.0.0.1" start >/dev/null
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$pgport" -U avatar avatar 2>/dev/null || true

  # Redis: live events and commands only, nothing to keep
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" --dir "$DIR/redis"

  local secret; secret=$("$PY" -c 'import secrets; print(secrets.token_hex(24))')
  cat > "$DIR/config.yaml" <<YAML
storage:
  url: postgresql://avatar@127.0.0.1:$pgport/avatar
bus:
  url: redis://127.0.0.1:$rport/0
operators:
  token_secret: $secret
YAML

  # the workers, each with its own port and id
  local i wport upstream="" routes=""
  for ((i = 1; i <= workers; i++)); do
    wport=$(free_port)
    # the shared config, this worker's own part, then --extra, merged section by section
    # (YAML concatenated would let a second `server:` or `operators:` replace the first)
    # Workers on one machine share its cores: each budgets its calls on its share.
    "$PY" - "$DIR/config.yaml" "$i" "$wport" "$extra" "$workers" > "$DIR/w$i.yaml" <<'PY'
import os, sys, yaml
base, i, port, extra, workers = sys.argv[1:]
cfg = yaml.safe_load(open(base))
share = round((os.cpu_count() or 1) / int(workers), 2)
parts = [{"cluster": {"worker_id": f"w{i}", "address": f"http://127.0.0.1:{port}"},
          "server": {"trusted_proxies": ["127.0.0.1"], "cores": share}}]
if extra:
    parts.append(yaml.safe_load(open(extra)) or {})
for part in parts:
    for section, value in part.items():
        if isinstance(value, dict) and isinstance(cfg.get(section), dict):
            cfg[section] = {**cfg[section], **value}
        else:
            cfg[section] = value
sys.stdout.write(yaml.safe_dump(cfg, sort_keys=False))
PY
    nohup "$AGENT" serve --config "$DIR/w$i.yaml" --host 127.0.0.1 --port "$wport" \
      > "$DIR/w$i.log" 2>&1 &
    echo $! > "$DIR/w$i.pid"
    upstream+="    server 127.0.0.1:$wport max_fails=0;"$'\n'
    routes+="    w$i 127.0.0.1:$wport;"$'\n'
  done
  for ((i = 1; i <= workers; i++)); do
    wport=$(sed -n 's|.*address: http://127.0.0.1:||p' "$DIR/w$i.yaml")
    wait_http "http://127.0.0.1:$wport/healthz" 300 "$DIR/w$i.log"
  done

  # nginx in front
  local scheme=http listen="127.0.0.1:$port" tls=""
  if [ $plain = 0 ]; then
    scheme=https listen="127.0.0.1:$port ssl"
    if [ ! -e "$DIR/nginx/cert.pem" ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$DIR/nginx/key.pem" -out "$DIR/nginx/cert.pem" 2>/dev/null
    fi
    tls="    ssl_certificate $DIR/nginx/cert.pem;
    ssl_certificate_key $DIR/nginx/key.pem;"
  fi
  "$PY" - "$ROOT/scripts/cluster-nginx.conf.in" "$DIR/nginx/nginx.conf" "$DIR/nginx" \
    "$listen" "$upstream" "$routes" "$tls" <<'PY'
import sys
src, dst, prefix, listen, upstream, routes, tls = sys.argv[1:]
text = open(src).read()
for key, value in (("@DIR@", prefix), ("@LISTEN@", listen), ("@UPSTREAM@", upstream.rstrip()),
                   ("@ROUTES@", routes.rstrip()), ("@TLS@", tls)):
    text = text.replace(key, value)
open(dst, "w").write(text)
PY
  nginx -t -q -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" -g "pid $DIR/nginx/nginx.pid;"
  nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" -g "pid $DIR/nginx/nginx.pid;"
  wait_http "$scheme://127.0.0.1:$port/healthz" 30 "$DIR/nginx/error.log"
  echo "$scheme://127.0.0.1:$port"
}

stop_pid() {  # PIDFILE: SIGTERM, then SIGKILL after 20 s
  [ -e "$1" ] || return 0
  local pid; pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

down() {
  [ -d "$DIR" ] || return 0
  stop_pid "$DIR/nginx/nginx.pid"
  local f
  for f in "$DIR"/w*.pid; do [ -e "$f" ] && stop_pid "$f"; done
  stop_pid "$DIR/redis/redis.pid"
  if [ -e "$DIR/pg/data/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null || true
  fi
  rm -f "$DIR/up"
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  *) die "usage: scripts/cluster.sh up [--workers N] [--port P] [--plain-http] [--extra FILE] | down" ;;
esac
