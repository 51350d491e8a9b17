"""Reelscribe's Python client.

- `ReelscribeClient`: an async client (grpc.aio) with deadlines, retries of
  calls that are safe to repeat, resumable uploads and watches that resume
  by sequence number.
- `v1`: the API's messages and enums, generated with betterproto2.
- `ReelscribeError`: every failed call, with the server's error details.
"""

from reelscribe_client._client import ReelscribeClient
from reelscribe_client._errors import ReelscribeError
from reelscribe_client._proto.reelscribe import v1

__all__ = ["ReelscribeClient", "ReelscribeError", "v1"]
