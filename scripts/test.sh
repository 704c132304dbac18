#!/usr/bin/env bash
# README's second command: every test, from a fresh clone (lab tests skip with a reason when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm test
