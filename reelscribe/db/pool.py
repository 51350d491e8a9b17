"""The asyncpg connection pool, translating Postgres failures into domain errors.

Every query runs inside `pool.acquire()` (the server's handlers, the workers'
stages, the pool's own `fetch`/`execute` shortcuts), so its context is the
adapter boundary: a lost, refused or shutting-down connection leaves it as
`Unavailable` (raised from the asyncpg or OS error), and text Postgres cannot
store as `InvalidArgument` (NUL_CHARACTER). Everything else, such as a
constraint violation, passes through unchanged for the repository code to
handle or for the interceptor to report as INTERNAL.
"""

from __future__ import annotations

import json
from types import TracebackType

import asyncpg
from asyncpg.pool import PoolAcquireContext

from reelscribe.errors import InvalidArgument, ReelscribeError, Unavailable

#: Errors that say Postgres is unreachable rather than that the query is wrong.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    # Connections lost, refused or rejected (08xxx, e.g. ConnectionDoesNotExistError),
    # a server starting or stopping (57P0x), no connection slot left (53300).
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,
    # The client side of a closed pool or connection ("pool is closing").
    asyncpg.exceptions.InterfaceError,
    # The pool's own bookkeeping tripping over a connection that died under it
    # ("release() called on a free connection holder", "cannot switch to state").
    asyncpg.exceptions.InternalClientError,
    # Sockets reset or timing out (a query past `command_timeout` included).
    ConnectionError,
    TimeoutError,
)

#: How many links of an exception's cause chain are searched for a connection error.
_CHAIN_DEPTH = 5


def _lost_connection(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from or while handling, is a
    connection error (code that wraps one in its own exception still means it)."""
    current: BaseException | None = exc
    for _ in range(_CHAIN_DEPTH):
        if current is None:
            return False
        if isinstance(current, CONNECTION_ERRORS):
            return True
        current = current.__cause__ or current.__context__
    return False


def translate(exc: BaseException, *, connecting: bool = False) -> ReelscribeError | None:
    """The domain error an exception from Postgres stands for; None to let it pass.

    `connecting` says it came from getting a connection, where any OS error
    means the server cannot be reached (a missing Unix socket is a
    FileNotFoundError, a stopped server a refused connection).
    """
    if isinstance(exc, ReelscribeError) or not isinstance(exc, Exception):
        return None  # domain errors are translated already; cancellation is no failure
    if isinstance(
        exc,
        asyncpg.exceptions.CharacterNotInRepertoireError
        | asyncpg.exceptions.UntranslatableCharacterError,
    ):
        # Postgres text cannot hold NUL characters, whichever field carried one
        # (in jsonb, "\u0000" is refused as untranslatable). Requests are
        # validated before they get here; this is the net under that.
        return InvalidArgument(
            "text fields must not contain NUL (\\u0000) characters", reason="NUL_CHARACTER"
        )
    if (connecting and isinstance(exc, OSError)) or _lost_connection(exc):
        # The message names no service: callers only need to know to retry.
        return Unavailable("a backing service is unavailable; retry shortly")
    return None


def _raise_translated(exc: BaseException, *, connecting: bool = False) -> None:
    translated = translate(exc, connecting=connecting)
    if translated is not None:
        raise translated from exc


class _Acquire(PoolAcquireContext):
    """`pool.acquire()`: asyncpg's own context, translating what leaves it.

    Only the `async with` form translates; the code base uses no other
    (`conn = await pool.acquire()` would get asyncpg's errors as they are).
    """

    __slots__ = ()

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            return await super().__aenter__()
        except Exception as exc:
            _raise_translated(exc, connecting=True)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        try:
            # Releasing resets the connection, which fails if it died meanwhile.
            await super().__aexit__(exc_type, exc_val, exc_tb)
        except Exception as exc:
            _raise_translated(exc)
            raise
        if exc_val is not None:
            _raise_translated(exc_val)


class Pool(asyncpg.Pool):
    """asyncpg's pool whose `acquire` translates Postgres failures (see the module)."""

    def acquire(self, *, timeout: float | None = None) -> _Acquire:
        """A connection for an `async with` block, released when the block ends."""
        return _Acquire(self, timeout)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns travel as Python objects rather than strings.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(database_url: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """A connection pool for `database_url` with the project's type codecs.

    Failing to open the first connections is not translated: that is a
    process failing to start, reported as such, not a call to answer.
    """
    # What `asyncpg.create_pool` does, with our pool class (it takes no class argument).
    pool = Pool(
        database_url,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        init=_init_connection,
        command_timeout=60,
    )
    await pool
    return pool
