#!/usr/bin/env bash
# Start (or stop) the whole scaled-out stack on 127.0.0.1 for development and CI: PostgreSQL,
# Redis and a Chroma server (scripts/services.sh), then N API replicas (`brandloop serve`) and
# N Celery workers (`brandloop worker`) sharing them and one artifacts directory.
#
#   bash scripts/stack.sh start [--apis N] [--workers N] [--concurrency C]   # prints the env and URLs
#   bash scripts/stack.sh stop [--keep-services]   # workers drain first; then PostgreSQL etc.
#
# API replicas listen on 127.0.0.1:${BRANDLOOP_STACK_PORT:-8100} and up. State, logs and pids
# live in $BRANDLOOP_STACK_DIR (default /tmp/brandloop-stack). See docs/runbook.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BRANDLOOP_STACK_DIR:-/tmp/brandloop-stack}
PORT=${BRANDLOOP_STACK_PORT:-8100}
BL=${BRANDLOOP_BIN:-.venv/bin/brandloop}

stack_env() {
  eval "$(bash scripts/services.sh env)"
  export BRANDLOOP_DATABASE_URL=$BRANDLOOP_TEST_POSTGRES_URL
  export BRANDLOOP_REDIS_URL=$BRANDLOOP_TEST_REDIS_URL
  export BRANDLOOP_CHROMA_HOST=$BRANDLOOP_TEST_CHROMA_HOST
  export BRANDLOOP_CHROMA_PORT=$BRANDLOOP_TEST_CHROMA_PORT
  export BRANDLOOP_QUEUE=celery
  export BRANDLOOP_ARTIFACTS_DIR=$DIR/artifacts
}

start() {
  local apis=2 workers=2 concurrency=2
  while [ $# -gt 0 ]; do
    case "$1" in
      --apis) apis=$2; shift 2 ;;
      --workers) workers=$2; shift 2 ;;
      --concurrency) concurrency=$2; shift 2 ;;
      *) echo "stack: unknown option $1" >&2; exit 2 ;;
    esac
  done
  bash scripts/services.sh start >/dev/null
  stack_env
  mkdir -p "$DIR/artifacts"
  # the explicit migration step: replicas and workers refuse to start on an outdated schema
  BRANDLOOP_DATA_DIR=$DIR/migrate "$BL" db upgrade >&2
  for i in $(seq 0 $((apis - 1))); do
    BRANDLOOP_DATA_DIR=$DIR/api$i nohup "$BL" serve --port $((PORT + i)) --workers 0 \
      >"$DIR/api$i.log" 2>&1 &
    echo $! >"$DIR/api$i.pid"
  done
  for i in $(seq 0 $((workers - 1))); do
    BRANDLOOP_DATA_DIR=$DIR/worker$i nohup "$BL" worker --concurrency "$concurrency" \
      >"$DIR/worker$i.log" 2>&1 &
    echo $! >"$DIR/worker$i.pid"
  done
  for i in $(seq 0 $((apis - 1))); do
    for _ in $(seq 1 100); do
      curl -fs "http://127.0.0.1:$((PORT + i))/healthz" >/dev/null 2>&1 && break
      sleep 0.2
    done
    echo "# API replica $i: http://127.0.0.1:$((PORT + i))" >&2
  done
  env | grep -E '^BRANDLOOP_(DATABASE_URL|REDIS_URL|CHROMA_HOST|CHROMA_PORT|QUEUE|ARTIFACTS_DIR)=' \
    | sed 's/^/export /'
}

stop() {
  # workers first (SIGTERM = Celery's warm shutdown: running jobs finish), then the replicas
  for f in "$DIR"/worker*.pid "$DIR"/api*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$f"
  done
  [ "${1:-}" = "--keep-services" ] || bash scripts/services.sh stop
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start [--apis N] [--workers N] [--concurrency C] | stop [--keep-services]" >&2; exit 2 ;;
esac
