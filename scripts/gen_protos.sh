#!/usr/bin/env bash
# Regenerates the committed Python protobuf + gRPC code under reelscribe/v1/.
# grpcio-tools bundles protoc, so no system protoc is needed. Run from the
# repository root inside the project's virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
out=reelscribe/v1
find "$out" -maxdepth 1 \( -name '*_pb2*.py' -o -name '*_pb2*.pyi' \) -delete
python -m grpc_tools.protoc -Iprotos \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  protos/reelscribe/v1/*.proto
# grpc_tools emits plain `from reelscribe.v1 import x_pb2` imports, which is what
# we want: the package is importable as `reelscribe.v1`.
touch "$out/__init__.py"
