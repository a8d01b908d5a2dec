#!/usr/bin/env bash
# Set up, start the services the server tests use (PostgreSQL, Redis, a Chroma server, all on
# 127.0.0.1), run the whole test suite, stop the services. CI runs this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ORT_DISABLE_TELEMETRY=1
# static checks first: lint, types, and the layer contract (docs/architecture.md)
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
if env_lines=$(bash scripts/services.sh start); then
  eval "$env_lines"
  trap 'bash scripts/services.sh stop' EXIT
elif [ -n "${CI:-}" ]; then
  echo "test: could not start the services (see above)" >&2
  exit 1
else
  echo "test: services not started (needs apt-get as root); server tests will be skipped" >&2
fi
# two processes (BRANDLOOP_TEST_PROCESSES): each owns its PostgreSQL databases and Redis
# databases (tests/services.py), and tests/conftest.py keeps each file on one of them
.venv/bin/python -m pytest -q -p no:cacheprovider -n "${BRANDLOOP_TEST_PROCESSES:-2}" \
  --dist loadgroup "$@"
