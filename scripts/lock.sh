#!/usr/bin/env bash
# Re-resolve pyproject.toml's dependencies in a scratch venv and write the
# fully pinned tree to requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --upgrade pip==26.0.1
"$tmp/venv/bin/pip" install -q -e ".[dev]"
{
  echo "# Full pinned dependency tree of reelscribe[dev] (Python 3.11, Linux)."
  echo "# Regenerate with scripts/lock.sh after changing pyproject.toml."
  "$tmp/venv/bin/pip" freeze --all --exclude-editable | grep -v -e "^-e" -e "^pip=="
} > requirements.lock
