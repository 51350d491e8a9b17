"""Server reflection that answers the way debugging tools need.

grpcio-reflection serves descriptors rebuilt from the generated modules, which
drops every comment (`CopyToProto` has no source info), cannot resolve a
method's symbol (`grpcurl describe reelscribe.v1.JobService.CreateJob` fails
with "Symbol not found"), and knows nothing of the `google.rpc` types our
errors carry in their details (so tools print them as base64). This servicer
answers from file descriptors as written: the contracts come from the
descriptor set that `scripts/gen_protos.sh` builds with source info
(`reelscribe/v1/descriptors.binpb`), and the health, reflection and
`google.rpc` error-detail files are added from their modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from types import ModuleType

from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection_pb2

#: Modules whose files are served besides the contracts.
EXTRA_MODULES: tuple[ModuleType, ...] = (error_details_pb2, status_pb2, health_pb2, reflection_pb2)


def _contracts() -> list[descriptor_pb2.FileDescriptorProto]:
    data = resources.files("reelscribe.v1").joinpath("descriptors.binpb").read_bytes()
    return list(descriptor_pb2.FileDescriptorSet.FromString(data).file)


def _from_module(module: ModuleType) -> list[descriptor_pb2.FileDescriptorProto]:
    """The module's file and, transitively, the files it imports."""
    out: list[descriptor_pb2.FileDescriptorProto] = []
    todo = [module.DESCRIPTOR]
    seen: set[str] = set()
    while todo:
        file = todo.pop()
        if file.name in seen:
            continue
        seen.add(file.name)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        out.append(proto)
        todo.extend(file.dependencies)
    return out


def _symbols(file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    """Every fully qualified symbol `file` defines, methods included."""
    prefix = f"{file.package}." if file.package else ""

    def messages(items: Iterable[descriptor_pb2.DescriptorProto], scope: str) -> Iterator[str]:
        for message in items:
            name = scope + message.name
            yield name
            yield from (f"{name}.{field.name}" for field in message.field)
            yield from (f"{name}.{enum.name}" for enum in message.enum_type)
            yield from messages(message.nested_type, name + ".")

    yield from messages(file.message_type, prefix)
    for enum in file.enum_type:
        yield prefix + enum.name
        yield from (prefix + value.name for value in enum.value)  # enum values are siblings
    for service in file.service:
        yield prefix + service.name
        yield from (f"{prefix}{service.name}.{method.name}" for method in service.method)
    yield from (prefix + ext.name for ext in file.extension)


class DescriptorFiles:
    """File descriptors by name and by the symbols they define."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self._files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        for file in files:
            # The first definition wins: the contracts (with comments) come first.
            self._files.setdefault(file.name, file)
        self._by_symbol = {
            symbol: name for name, file in self._files.items() for symbol in _symbols(file)
        }

    @classmethod
    def default(cls) -> DescriptorFiles:
        """The contracts with source info, plus health, reflection and google.rpc."""
        extra = [proto for module in EXTRA_MODULES for proto in _from_module(module)]
        return cls([*_contracts(), *extra])

    def file_for_symbol(self, symbol: str) -> str | None:
        """The name of the file defining `symbol` (a leading dot is ignored)."""
        return self._by_symbol.get(symbol.lstrip("."))

    def closure(self, name: str) -> list[bytes] | None:
        """`name` and every file it imports, transitively, serialized; None if unknown."""
        if name not in self._files:
            return None
        out: list[bytes] = []
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop(0)
            if current in seen or current not in self._files:
                continue
            seen.add(current)
            file = self._files[current]
            out.append(file.SerializeToString())
            todo.extend(file.dependency)
        return out


class ReflectionServicer(reflection_aio.ReflectionServicer):
    """grpcio-reflection's servicer, answering file requests from `DescriptorFiles`."""

    def __init__(self, service_names: Iterable[str], files: DescriptorFiles) -> None:
        super().__init__(service_names)
        self._files = files

    def _respond(
        self, request: reflection_pb2.ServerReflectionRequest, name: str | None
    ) -> reflection_pb2.ServerReflectionResponse:
        serialized = self._files.closure(name) if name is not None else None
        if serialized is None:
            return reflection_pb2.ServerReflectionResponse(
                error_response=reflection_pb2.ErrorResponse(
                    error_code=5, error_message="symbol or file not found"
                ),
                original_request=request,
            )
        return reflection_pb2.ServerReflectionResponse(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=serialized
            ),
            original_request=request,
        )

    def _file_by_filename(
        self, request: reflection_pb2.ServerReflectionRequest, filename: str
    ) -> reflection_pb2.ServerReflectionResponse:
        return self._respond(request, filename)

    def _file_containing_symbol(
        self, request: reflection_pb2.ServerReflectionRequest, fully_qualified_name: str
    ) -> reflection_pb2.ServerReflectionResponse:
        return self._respond(request, self._files.file_for_symbol(fully_qualified_name))
