"""Jyutping and Yale romanization of Cantonese transcripts.

Readings come from pycantonese, which segments a run of Chinese characters into
words and looks each word up (HKCanCor and rime-cantonese data). Word context
matters: 銀行 is "ngan4 hong4" but 行路 is "haang4 lou6", so text is always
romanized a whole run at a time, never character by character, unless a word
is unknown.

Output is one space-separated token per syllable. Text that is not Chinese
(Latin letters, digits, punctuation) passes through unchanged as its own
tokens, and an ideograph without a known reading is kept as is, so no text is
ever lost from a romanization line.

pycantonese builds its lookup tables and loads its segmenter on first use
(about 1.5 s), so it is imported lazily: importing this module costs nothing.
Call `preload` at startup to pay that cost before the first request.

pycantonese knows traditional characters; most simplified ones (广东话) have no
reading or a wrong one, so transcripts should be in traditional characters.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache

from reelscribe import captions
from reelscribe.v1 import transcript_service_pb2 as tpb

#: Whisper language codes under which a transcript may be Cantonese. Whisper
#: reports Cantonese as `yue`, but often as `zh` as well.
CANTONESE_LANGUAGES = frozenset({"yue", "zh"})

# Ideographs: IDEOGRAPHIC NUMBER ZERO (U+3007, read "ling4"), CJK Extension A, the
# CJK Unified block, the compatibility block, and planes 2 and 3, which hold
# only CJK ideographs (Extensions B to H and the compatibility supplement).
_IDEOGRAPH = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_IDEOGRAPH_RE = re.compile(f"[{_IDEOGRAPH}]")
# A run of ideographs, or a run of anything else.
_RUN_RE = re.compile(f"[{_IDEOGRAPH}]+|[^{_IDEOGRAPH}]+")

# Punctuation that hugs the token before it / after it instead of being
# spaced, so "(廣東話)。" reads "(gwong2 dung1 waa2)。", not "( gwong2 ... ) 。".
# Full-width marks are written as escapes: they look like their ASCII twins.
_NO_SPACE_BEFORE = frozenset(
    ",.!?;:%)]}\u201d\u2019"
    "\uff0c\u3002\uff01\uff1f\uff1b\uff1a\u3001\uff09\u300d\u300f\u3011\u300b\u3009\u2026"
)
#: One syllable of a romanization (Jyutping "waa2", Yale "hēung"), without the
#: punctuation that may hug it.
_SYLLABLE_RE = re.compile(r"\s*([^\W_]+)")
_SPACES_RE = re.compile(r"\s*")
_NO_SPACE_AFTER = frozenset("([{\u201c\u2018\uff08\u300c\u300e\u3010\u300a\u3008")

# pycantonese is not documented as thread-safe: its lookup tables are built by
# an lru_cache (which may run twice concurrently), and its segmenter is a Rust
# object that also edits a Python-side table when it meets unseen Latin text.
# Every call therefore goes through this lock. The calls take microseconds once
# loaded, so serializing them costs nothing; the first one loads the data while
# holding the lock, so concurrent first callers wait instead of loading twice.
_lock = threading.Lock()

# A reading per character of a text: the Jyutping of an ideograph (normally
# one syllable), or None for an unknown ideograph or a non-Chinese character.
_Readings = list[str | None]


def is_chinese(text: str) -> bool:
    """True when `text` contains at least one CJK ideograph."""
    return _IDEOGRAPH_RE.search(text) is not None


def needs_romanization(language: str, text: str) -> bool:
    """True when a segment in `language` with this text should be romanized.

    `language` is the Whisper code of the transcript (`yue`, `zh`, `en`, ...);
    a region suffix (`zh-HK`) or different case is accepted.
    """
    base = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return base in CANTONESE_LANGUAGES and is_chinese(text)


_opencc_lock = threading.Lock()
_opencc: list[Callable[[str], str]] = []


def to_traditional(text: str) -> str:
    """`text` in Hong Kong traditional characters (OpenCC `s2hk`).

    Whisper writes Chinese in simplified characters more often than not, and
    pycantonese reads traditional ones; text already traditional, and text
    that is not Chinese, comes back unchanged.
    """
    if not is_chinese(text):
        return text
    with _opencc_lock:
        if not _opencc:
            import opencc  # Deferred: loading its dictionaries takes a moment.

            _opencc.append(opencc.OpenCC("s2hk").convert)
        return _opencc[0](text)


def preload() -> None:
    """Load pycantonese's data now rather than on the first romanization."""
    _lookup("香")


def romanize_text(text: str) -> tuple[str, str]:
    """Jyutping and Yale for a segment's text.

    Syllables are separated by single spaces; non-Chinese runs are kept as
    tokens of their own ("我用iPhone 15" gives "ngo5 jung6 iPhone 15"). Text
    without any ideograph is returned unchanged as both romanizations.
    """
    if not is_chinese(text):
        return text, text
    readings = _readings(text)
    return (
        _join(_tokens(text, readings, 0, len(text))),
        _join(_tokens(text, readings, 0, len(text), _yale)),
    )


def romanize_words(words: Sequence[str], *, yale: bool = False) -> list[str]:
    """Jyutping per recognized word, one entry per entry of `words`.

    The words are read in the context of the whole sequence (Whisper often cuts
    Chinese into single characters, and 行 alone cannot tell "hong4" from
    "haang4"). The words are concatenated as given, so they should carry their
    own leading spaces as Whisper emits them. Each result is stripped and its
    tokens are spaced as in `romanize_text`; a word with no ideograph keeps its
    text. Pass the words of one segment at a time. With `yale`, Yale instead of
    Jyutping (read the same way).
    """
    text = "".join(words)
    readings: _Readings = _readings(text) if is_chinese(text) else [None] * len(text)
    out: list[str] = []
    start = 0
    for word in words:
        end = start + len(word)
        out.append(_join(_tokens(text, readings, start, end, _yale if yale else str)))
        start = end
    return out


class _JyutpingLines:
    """Jyutping lines under caption lines (a `captions.Romanizer`).

    A segment's words read as the transcript's romanization gave them
    (`Word.jyutping`); words without it are read in the context of their
    segment. A segment without word timings is cut into characters, and its
    romanization (`Segment.jyutping`, or Jyutping computed from the text) is
    split to match them.
    """

    def readings(self, segment: tpb.Segment, pieces: Sequence[str]) -> Sequence[str]:
        """One reading per piece (see `captions.Romanizer`)."""
        words = segment.words
        if words and [w.text for w in words] == list(pieces):
            if all(w.jyutping or not is_chinese(w.text) for w in words):
                return [w.jyutping or w.text.strip() for w in words]
        elif segment.jyutping:
            given = _split_given(pieces, segment.jyutping)
            if given is not None:
                return given
        return romanize_words(pieces)

    def join(self, readings: Sequence[str]) -> str:
        """Readings spaced like `romanize_text` spaces its tokens."""
        return _join([r for r in readings if r])


#: The romanizer behind `romanization_line` captions.
JYUTPING = _JyutpingLines()


def romanized_layout(
    segments: Sequence[tpb.Segment], lay: captions.CaptionLayout
) -> list[captions.Caption]:
    """Captions with a Jyutping line under each Chinese line, laid out by `lay`
    (which counts both lines; see `captions.layout`)."""
    return captions.layout(segments, lay, romanizer=JYUTPING)


def _split_given(pieces: Sequence[str], given: str) -> list[str] | None:
    """`given` (a romanization of the pieces joined, like `romanize_text` writes
    it) cut into one reading per piece: a syllable per ideograph, non-Chinese
    text as itself. None when it does not line up with the pieces (a
    translated text, say)."""
    out: list[str] = []
    pos = 0
    for piece in pieces:
        text = piece.strip()
        ideographs = len(_IDEOGRAPH_RE.findall(text))
        if not ideographs:
            pos = _SPACES_RE.match(given, pos).end()  # type: ignore[union-attr]
            if not given.startswith(text, pos):
                return None
            out.append(text)
            pos += len(text)
            continue
        if ideographs != len(text):
            return None
        syllables: list[str] = []
        for _ in text:
            match = _SYLLABLE_RE.match(given, pos)
            if match is None:
                return None
            syllables.append(match.group(1))
            pos = match.end()
        out.append(" ".join(syllables))
    return out if not given[pos:].strip() else None


def _lookup(chars: str | list[str]) -> list[tuple[str, str | None]]:
    """pycantonese.characters_to_jyutping, serialized (see `_lock`)."""
    import pycantonese  # Deferred: the import and the data are slow (module doc).

    with _lock:
        return pycantonese.characters_to_jyutping(chars)


def _readings(text: str) -> _Readings:
    """A reading for each character of `text` (see `_Readings`)."""
    readings: _Readings = [None] * len(text)
    for run in _RUN_RE.finditer(text):
        if not _IDEOGRAPH_RE.match(run.group()):
            continue
        # Only runs of ideographs go to pycantonese: it drops spaces and reads
        # some digits ("3" as "saam1") but not others ("2024"), and non-Chinese
        # text must pass through untouched.
        pos = run.start()
        for word, jyutping in _lookup(run.group()):
            if text.startswith(word, pos):
                syllables = jyutping.split() if jyutping else []
                if len(syllables) == len(word):
                    readings[pos : pos + len(word)] = syllables
                else:
                    # Unknown as a word (or, rarely, not one syllable per
                    # character): read its characters one by one instead.
                    readings[pos : pos + len(word)] = _char_readings(word)
                pos += len(word)
            else:
                # Segmentation that does not line up with the text (pycantonese
                # normalized something): read the rest of the run per character.
                readings[pos : run.end()] = _char_readings(text[pos : run.end()])
                break
    return readings


def _char_readings(chars: str) -> _Readings:
    # A list (not a string) tells pycantonese to skip word segmentation.
    looked_up = _lookup(list(chars))
    if len(looked_up) != len(chars):
        return [None] * len(chars)
    return [jyutping for _, jyutping in looked_up]


def _tokens(
    text: str,
    readings: _Readings,
    start: int,
    end: int,
    convert: Callable[[str], str] = str,
) -> list[str]:
    """Tokens of text[start:end]: `convert` of each ideograph's reading
    (the ideograph itself when unknown), and whitespace-separated words of
    the non-Chinese runs, which are never converted."""
    tokens: list[str] = []
    for run in _RUN_RE.finditer(text, start, end):
        chunk = run.group()
        if _IDEOGRAPH_RE.match(chunk):
            for i, char in enumerate(chunk, start=run.start()):
                reading = readings[i]
                tokens.append(convert(reading) if reading else char)
        else:
            tokens.extend(chunk.split())
    return tokens


@lru_cache(maxsize=4096)
def _yale(jyutping: str) -> str:
    """Yale for one reading; the Jyutping itself if pycantonese rejects it."""
    # Cached: Cantonese has under 2,000 distinct syllables, and the Yale
    # conversion parses the syllable every time. jyutping_to_yale is pure
    # Python over constant tables, so it needs no lock.
    from pycantonese import jyutping_to_yale

    try:
        return " ".join(jyutping_to_yale(jyutping))
    except ValueError:
        return jyutping


def _join(tokens: Sequence[str]) -> str:
    out: list[str] = []
    for token in tokens:
        if out and token[0] not in _NO_SPACE_BEFORE and out[-1][-1] not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(token)
    return "".join(out)
