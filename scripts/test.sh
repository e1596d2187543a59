#!/usr/bin/env bash
# The README's second command: set up a fresh machine, install memtap with its test dependencies, build every
# example guest, then run the linters and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh test
.venv/bin/python guest/build.py
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
