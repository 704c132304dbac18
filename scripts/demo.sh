#!/usr/bin/env bash
# README's first command: the main job, from a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p .
exec node dist/src/cli/main.js demo "$@"
