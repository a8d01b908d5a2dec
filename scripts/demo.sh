#!/usr/bin/env bash
# Set up, then run brandloop on the bundled Acme Coffee brand kit and autumn-sale brief.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/brandloop generate "$(cat examples/briefs/autumn-sale.txt)" \
  --brand examples/brands/acme-coffee.yaml --n 4 --size 768x768 --seed 7 "$@"
