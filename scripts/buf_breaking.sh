#!/usr/bin/env bash
# Contracts may grow but not break: compare protos/ with the previous commit
# (skipped when that commit has no buf.yaml, i.e. before the contracts existed).
set -euo pipefail
cd "$(dirname "$0")/.."
buf=node_modules/.bin/buf
if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then
  "$buf" breaking --against ".git#ref=HEAD~1"
else
  echo "buf breaking: no earlier contracts to compare with"
fi
