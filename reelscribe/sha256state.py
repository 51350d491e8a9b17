"""A SHA-256 whose running state can be saved and restored, on another machine too.

An upload whose parts arrive at different servers over hours is hashed as
its bytes go by: each server restores the state the previous part left in
Postgres, feeds it the new bytes and saves it again, so verifying the whole
file at the end needs no second read of it. `hashlib` cannot export its state,
so this uses OpenSSL's own SHA-256 (`SHA256_Init`/`SHA256_Update`/`SHA256_Final`
of libcrypto, the library `hashlib` itself runs on) through ctypes: its state is
the public `SHA256_CTX` struct of `openssl/sha.h`, 112 bytes of native-endian
words. A saved state names the layout it was written in (byte order and size),
and `restore` refuses one of another layout; callers then fall back to reading
the bytes back. When libcrypto cannot be loaded, `available()` is False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any

#: sizeof(SHA256_CTX): h[8], Nl, Nh, data[16] (32-bit words), num, md_len.
_CTX_BYTES = 112
#: Prefix of a saved state: the layout its words are in.
_LAYOUT = f"ossl-sha256-{sys.byteorder}-{_CTX_BYTES}:".encode()


@functools.cache
def _libcrypto() -> Any | None:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        for fn in (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final):
            fn.restype = ctypes.c_int
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    """Whether resumable hashing works on this machine."""
    return _libcrypto() is not None


class ResumableSha256:
    """SHA-256 of bytes fed in order, with `save`/`restore` of the state between feeds."""

    def __init__(self) -> None:
        lib = _libcrypto()
        if lib is None:
            raise RuntimeError("libcrypto (OpenSSL) is not available")
        self._lib = lib
        self._ctx = ctypes.create_string_buffer(_CTX_BYTES)
        if lib.SHA256_Init(self._ctx) != 1:
            raise RuntimeError("SHA256_Init failed")

    @classmethod
    def restore(cls, state: bytes) -> ResumableSha256 | None:
        """The hash as `save` left it; None for a state of another layout."""
        if not state.startswith(_LAYOUT) or len(state) != len(_LAYOUT) + _CTX_BYTES:
            return None
        hasher = cls()
        ctypes.memmove(hasher._ctx, state[len(_LAYOUT) :], _CTX_BYTES)
        return hasher

    def update(self, data: bytes | bytearray) -> None:
        """Feed the next bytes (read in place, not copied)."""
        if not data:
            return
        buf = data if isinstance(data, bytes) else (ctypes.c_char * len(data)).from_buffer(data)
        if self._lib.SHA256_Update(self._ctx, buf, len(data)) != 1:
            raise RuntimeError("SHA256_Update failed")

    def save(self) -> bytes:
        """The state so far, to store and `restore` later (anywhere of the same layout)."""
        return _LAYOUT + self._ctx.raw

    def hexdigest(self) -> str:
        """The digest of everything fed so far (the state itself stays usable)."""
        ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_BYTES)
        out = ctypes.create_string_buffer(32)
        if self._lib.SHA256_Final(out, ctx) != 1:
            raise RuntimeError("SHA256_Final failed")
        return out.raw.hex()
