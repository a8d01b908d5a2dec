#!/usr/bin/env bash
# Start or stop the services the scale-out tests use, all on 127.0.0.1, from Debian's PostgreSQL
# and Redis packages and the pip-installed Chroma server; install Debian's chromium for the
# studio's browser tests. For development and CI.
#
#   bash scripts/services.sh start   # installs what is missing, starts, prints the env to export
#   bash scripts/services.sh stop
#   bash scripts/services.sh env     # prints BRANDLOOP_TEST_* variables for the running stack
#
# State lives in $BRANDLOOP_SERVICES_DIR (default /tmp/brandloop-services); ports from
# BRANDLOOP_PG_PORT (55432), BRANDLOOP_REDIS_PORT (56379), BRANDLOOP_CHROMA_TEST_PORT (58000).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BRANDLOOP_SERVICES_DIR:-/tmp/brandloop-services}
PG_PORT=${BRANDLOOP_PG_PORT:-55432}
REDIS_PORT=${BRANDLOOP_REDIS_PORT:-56379}
CHROMA_PORT=${BRANDLOOP_CHROMA_TEST_PORT:-58000}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install_missing() {
  local need=()
  [ -n "$(pg_bin)" ] || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  # the studio's browser tests (tests/api/studio/test_browser.py) drive Debian's chromium
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core)
  if [ ${#need[@]} -gt 0 ]; then
    echo "services: installing ${need[*]} from Debian" >&2
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bin; bin=$(pg_bin)
  mkdir -p "$DIR"
  if [ ! -f "$DIR/pg/PG_VERSION" ]; then
    mkdir -p "$DIR/pg"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$DIR/pg"
    as_postgres "$bin/initdb" -D "$DIR/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if [ -f "$DIR/pg/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$DIR/pglog"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR/pg" "$DIR/pglog"
  as_postgres "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/pglog/postgres.log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k /tmp -c fsync=off -c max_connections=200" start >/dev/null
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='brandloop'" \
    | grep -q 1 || "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres brandloop
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_redis() {
  port_open "$REDIS_PORT" && return 0
  mkdir -p "$DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" --appendonly no --databases 128 \
    --dir "$DIR" --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
}

start_chroma() {
  port_open "$CHROMA_PORT" && return 0
  mkdir -p "$DIR/chroma"
  nohup .venv/bin/chroma run --path "$DIR/chroma" --host 127.0.0.1 --port "$CHROMA_PORT" \
    >"$DIR/chroma.log" 2>&1 &
  echo $! > "$DIR/chroma.pid"
  for _ in $(seq 1 100); do
    port_open "$CHROMA_PORT" && return 0
    sleep 0.1
  done
  echo "services: chroma did not start; see $DIR/chroma.log" >&2; return 1
}

print_env() {
  echo "export BRANDLOOP_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/brandloop"
  echo "export BRANDLOOP_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "export BRANDLOOP_TEST_CHROMA_HOST=127.0.0.1"
  echo "export BRANDLOOP_TEST_CHROMA_PORT=$CHROMA_PORT"
}

stop_all() {
  local bin; bin=$(pg_bin)
  if [ -n "$bin" ] && [ -f "$DIR/pg/postmaster.pid" ]; then
    as_postgres "$bin/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  [ -f "$DIR/redis.pid" ] && kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
  [ -f "$DIR/chroma.pid" ] && kill "$(cat "$DIR/chroma.pid")" 2>/dev/null || true
  rm -f "$DIR/redis.pid" "$DIR/chroma.pid"
}

case "${1:-}" in
  start) install_missing; start_postgres; start_redis; start_chroma; print_env ;;
  stop) stop_all ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
