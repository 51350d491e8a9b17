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
# The contracts with their comments, for server reflection (grpcurl describe
# shows them); the generated modules' descriptors carry no source info.
python -m grpc_tools.protoc -Iprotos \
  --descriptor_set_out="$out/descriptors.binpb" --include_source_info --include_imports \
  protos/reelscribe/v1/*.proto
# grpc_tools emits plain `from reelscribe.v1 import x_pb2` imports, which is what
# we want: the package is importable as `reelscribe.v1`.
touch "$out/__init__.py"

# Python client messages (betterproto2) for clients/python. The compiler
# formats its output with ruff, which must be on PATH (the venv's is).
client_out=clients/python/src/reelscribe_client/_proto
rm -rf "$client_out"
mkdir -p "$client_out"
python -m grpc_tools.protoc -Iprotos \
  --plugin=protoc-gen-python_betterproto2="$(command -v protoc-gen-python_betterproto2)" \
  --python_betterproto2_out="$client_out" \
  --python_betterproto2_opt=client_generation=none \
  protos/reelscribe/v1/*.proto 2>&1 | { grep -v "^Writing " >&2 || true; }
