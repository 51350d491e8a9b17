"""SearchService: library search (not built yet)."""

from __future__ import annotations

import grpc

from reelscribe.errors import Unimplemented
from reelscribe.v1 import search_service_pb2, search_service_pb2_grpc


class SearchService(search_service_pb2_grpc.SearchServiceServicer):
    """Implements `reelscribe.v1.SearchService`."""

    async def Search(
        self, request: search_service_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> search_service_pb2.SearchResponse:
        raise Unimplemented("Search: the indexing stage and library search are not built yet")
