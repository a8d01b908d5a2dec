#!/usr/bin/env bash
# Start (or stop) the whole scaled-out stack on 127.0.0.1 for development and CI: PostgreSQL,
# Redis and a Chroma server (scripts/services.sh), then N API replicas (`brandloop serve`) and
# N Celery workers (`brandloop worker`) sharing them and one artifacts directory.
#
#   bash scripts/stack.sh start [--apis N] [--workers N] [--concurrency C]   # prints the env and URLs
#   bash scripts/stack.sh stop [--keep-services] [--drain-seconds S]
#
# stop drains the workers first (SIGTERM: running jobs finish) and waits for them to exit, up to
# S seconds ($BRANDLOOP_STACK_DRAIN_SECONDS, default 300); a worker still running then is named
# on stderr and killed (SIGKILL: its jobs stay `running` and the lease sweep resumes them). Then
# the API replicas, the same way, and PostgreSQL, Redis and Chroma last, once every process is
# gone. A pid file is removed only once its process has exited.
#
# API replicas listen on 127.0.0.1:${BRANDLOOP_STACK_PORT:-8100} and up. State, logs and pids
# live in $BRANDLOOP_STACK_DIR (default /tmp/brandloop-stack). See docs/runbook.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BRANDLOOP_STACK_DIR:-/tmp/brandloop-stack}
PORT=${BRANDLOOP_STACK_PORT:-8100}
BL=${BRANDLOOP_BIN:-.venv/bin/brandloop}
DRAIN_S=${BRANDLOOP_STACK_DRAIN_SECONDS:-300}

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
      --apis) apis=$(value_of "$1" "${2-}" $#); shift 2 ;;
      --workers) workers=$(value_of "$1" "${2-}" $#); shift 2 ;;
      --concurrency) concurrency=$(value_of "$1" "${2-}" $#); shift 2 ;;
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
    starttime $! >"$DIR/api$i.start"
  done
  for i in $(seq 0 $((workers - 1))); do
    BRANDLOOP_DATA_DIR=$DIR/worker$i nohup "$BL" worker --concurrency "$concurrency" \
      >"$DIR/worker$i.log" 2>&1 &
    echo $! >"$DIR/worker$i.pid"
    starttime $! >"$DIR/worker$i.start"
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

# When process $1 started (clock ticks since boot: /proc/PID/stat's 22nd field, read after the
# command name, which may hold spaces); a reused pid has another.
starttime() {
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# Is the process of pid file $1 still the one the stack started? Not a zombie, nor its pid
# reused by another program: it started when the stack recorded (api0.start beside api0.pid);
# for a pid file without one (a stack started by an older script), its command line is
# `brandloop serve` or `brandloop worker` - "brandloop" alone also matched `tail -f` of a log
# in the stack's directory, which stop then killed (outside tester).
running() {
  local pid started role
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || return 1
  started="${1%.pid}.start"
  if [ -s "$started" ]; then
    [ "$(starttime "$pid")" = "$(cat "$started")" ]
    return
  fi
  case "$(basename "$1")" in api*) role=serve ;; *) role=worker ;; esac
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "brandloop $role( |\$)"
}

# The value of option $1, which must be given ($2 is what followed it, $3 how many words did)
value_of() {
  [ "$3" -ge 2 ] || { echo "stack: $1 needs a value" >&2; exit 2; }
  printf '%s' "$2"
}

# SIGTERM every process of the pid files given, wait for all of them up to $DRAIN_S seconds,
# then SIGKILL (named on stderr) whatever still runs. A pid file goes once its process is gone;
# returns non-zero if one survived even SIGKILL (its pid file stays).
stop_processes() {
  local f pid deadline=$((SECONDS + DRAIN_S)) left=0
  for f in "$@"; do
    running "$f" && kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$@"; do
    while running "$f" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  done
  for f in "$@"; do
    if running "$f"; then
      pid=$(cat "$f")
      echo "stack: $(basename "$f" .pid) (pid $pid) still running after ${DRAIN_S}s; killing it (SIGKILL): its jobs stay running and the lease sweep resumes them" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do running "$f" || break; sleep 0.2; done
    fi
    if running "$f"; then
      echo "stack: $(basename "$f" .pid) (pid $(cat "$f")) survived SIGKILL; its pid file $f stays" >&2
      left=1
    else
      rm -f "$f" "${f%.pid}.start"
    fi
  done
  return "$left"
}

stop() {
  local keep=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --keep-services) keep=1; shift ;;
      --drain-seconds) DRAIN_S=$(value_of "$1" "${2-}" $#); shift 2 ;;
      *) echo "stack: unknown option $1" >&2; exit 2 ;;
    esac
  done
  case "$DRAIN_S" in ''|*[!0-9]*) echo "stack: the drain timeout must be whole seconds, not '$DRAIN_S'" >&2; exit 2 ;; esac
  shopt -s nullglob
  # workers first (SIGTERM = Celery's warm shutdown: running jobs finish), then the replicas
  if ! stop_processes "$DIR"/worker*.pid || ! stop_processes "$DIR"/api*.pid; then
    echo "stack: processes are still running; PostgreSQL, Redis and Chroma were left running" >&2
    exit 1
  fi
  [ -n "$keep" ] || bash scripts/services.sh stop
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start [--apis N] [--workers N] [--concurrency C] | stop [--keep-services] [--drain-seconds S]" >&2; exit 2 ;;
esac
