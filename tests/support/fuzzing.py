"""Request generators for the fuzzer (tests/test_properties.py).

Any message of any RPC, built from its descriptor (hypothesis strategies), and
a deterministic sweep of the values aimed at the server's own parsers, each
sent alone in a request that reaches them (`edge_cases`). Fields a server
parses further get such values in the random requests too: page tokens
(keyset tokens with extreme times and offsets, positions beyond their
columns), cursors (other scripts' digits, integers beyond int64), Timestamps
over the whole int64/int32 range, labels with NUL and oversized keys.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message as pb_message
from hypothesis import strategies as st

from server import pagination

#: Fields that would make the server resolve random host names (no DNS here).
URL_FIELDS = frozenset({"source_uri", "callback_uri"})

#: Integers written as text, as a lax parser would still take some of them:
#: other scripts' digits, signs, spaces, and numbers beyond int32 and int64.
NUMBER_EDGES = ["0", "²", "٣", "1²", "+1", "-1", " 1", "1_0", "0x10", "9" * 20, "9" * 40, ""]
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str), st.sampled_from(NUMBER_EDGES)
)

#: The query `ListJobs` binds its page tokens to when no filter is given.
_DEFAULT_LISTING = "[]|False"


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _keyset_token(when: str) -> str:
    """A ListJobs token for the default listing (as `server.pagination` writes them)."""
    fingerprint = pagination._fingerprint(_DEFAULT_LISTING)
    return _b64(json.dumps({"t": when, "i": str(uuid.uuid4()), "q": fingerprint}))


#: Page tokens that pass each list parser's first glance.
PAGE_TOKEN_EDGES = [
    pagination.encode(datetime.min.replace(tzinfo=UTC), uuid.uuid4(), query=_DEFAULT_LISTING),
    pagination.encode(datetime.max.replace(tzinfo=UTC), uuid.uuid4(), query=_DEFAULT_LISTING),
    _keyset_token("0001-01-01T00:00:00+23:59"),
    _keyset_token("9999-12-31T23:59:59-23:59"),
    _keyset_token("2026-01-01T00:00:00"),
    *(f"{n}:1" for n in NUMBER_EDGES),  # webhook deliveries: event_seq:attempt
    *(f"1:{n}" for n in NUMBER_EDGES),
    *(_b64(f"{n}:0123456789abcdef") for n in NUMBER_EDGES),  # search: offset:fingerprint
]
PAGE_TOKENS = st.one_of(
    st.sampled_from(PAGE_TOKEN_EDGES),
    st.tuples(NUMBERS, NUMBERS).map(lambda p: f"{p[0]}:{p[1]}"),
    st.tuples(NUMBERS, st.text(max_size=16)).map(lambda p: _b64(f"{p[0]}:{p[1]}")),
    st.text(max_size=40),
)

#: `google.protobuf` messages holding a point or span of time.
TIME_TYPES = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})
TIME_EDGES: list[dict[str, int]] = [
    {"seconds": -62_135_596_801},
    {"seconds": 253_402_300_800},
    {"seconds": 2**63 - 1},
    {"seconds": -(2**63)},
    {"nanos": -1},
    {"nanos": 1_000_000_000},
    {"seconds": 253_402_300_799, "nanos": 999_999_999},
]
TIMES = st.one_of(
    st.sampled_from(TIME_EDGES),
    st.fixed_dictionaries(
        {},
        optional={
            "seconds": st.integers(min_value=-(2**63), max_value=2**63 - 1),
            "nanos": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        },
    ),
)

#: Label keys and values: NUL, empty, and longer than allowed, besides any text.
LABEL_EDGES = ["\x00", "a\x00b", "", "k" * 64, "v" * 300]
LABEL_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(LABEL_EDGES))

_T = pb_descriptor.FieldDescriptor
_INT64_TYPES = frozenset({_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64})
_STRINGS = [
    "jobs/",
    "jobs/x",
    f"jobs/{uuid.uuid4()}",
    f"media/{uuid.uuid4()}",
    "jobs/../../etc",
    "'; DROP TABLE jobs; --",
    "\u202e\U0001f600",
    "x" * 5000,
]


def _is_map(field: pb_descriptor.FieldDescriptor) -> bool:
    return field.type == _T.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _value(
    field: pb_descriptor.FieldDescriptor, depth: int, known: Sequence[str]
) -> st.SearchStrategy[Any]:
    if field.name == "page_token":
        return PAGE_TOKENS
    if field.name == "after_cursor":
        return NUMBERS
    if field.type == _T.TYPE_MESSAGE:
        if _is_map(field):
            return st.dictionaries(LABEL_TEXT, LABEL_TEXT, max_size=3)
        if field.message_type.full_name in TIME_TYPES:
            return TIMES
        return message_dict(field.message_type, known, depth + 1)
    if field.type == _T.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values] + [99])
    if field.type == _T.TYPE_BOOL:
        return st.booleans()
    if field.type in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if field.type == _T.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == _T.TYPE_STRING:
        return st.one_of(st.text(max_size=40), st.sampled_from([*_STRINGS, *known]))
    if field.type in _INT64_TYPES:
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    return st.integers(min_value=-(2**31), max_value=2**31 - 1)


def message_dict(
    desc: pb_descriptor.Descriptor, known: Sequence[str] = (), depth: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    """Any message of type `desc`, as a dict for `build`; strings may be `known` names."""
    if depth > 2:
        return st.just({})
    fields = {}
    for field in desc.fields:
        if field.name in URL_FIELDS:
            continue
        value = _value(field, depth, known)
        if field.is_repeated and not _is_map(field):
            value = st.lists(value, max_size=3)
        fields[field.name] = value
    return st.fixed_dictionaries({}, optional=fields)


def edge_cases(desc: pb_descriptor.Descriptor, names: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Each parser-aimed value of `desc`'s fields alone, in a request naming real
    resources (`names`: field name -> value, for fields such as `name`, `media`)
    so that it gets past the lookups to the parsing."""
    base: dict[str, Any] = {
        f.name: ([names[f.name]] if f.is_repeated else names[f.name])
        for f in desc.fields
        if f.name in names and f.type == _T.TYPE_STRING
    }
    for field in desc.fields:
        if field.name == "page_token":
            values: list[Any] = PAGE_TOKEN_EDGES
        elif field.name == "after_cursor":
            values = NUMBER_EDGES
        elif _is_map(field):
            values = [{key: "v"} for key in LABEL_EDGES] + [{"k": v} for v in LABEL_EDGES]
        elif field.type == _T.TYPE_MESSAGE and field.message_type.full_name in TIME_TYPES:
            values = TIME_EDGES
        else:
            continue
        for value in values:
            yield {**base, field.name: value}


def build(cls: type[pb_message.Message], data: dict[str, Any]) -> pb_message.Message:
    """A message of `cls` from a dict of `message_dict` or `edge_cases`."""
    message = cls()
    for name, value in data.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if _is_map(field):
            target.update(value)
        elif field.is_repeated:
            for item in value:
                if field.type == field.TYPE_MESSAGE:
                    target.add().CopyFrom(build(target._message_descriptor._concrete_class, item))
                else:
                    target.append(item)
        elif field.type == field.TYPE_MESSAGE:
            target.CopyFrom(build(type(target), value))
        else:
            setattr(message, name, value)
    return message
