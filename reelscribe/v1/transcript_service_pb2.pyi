import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_SRT: _ClassVar[ExportFormat]
    EXPORT_FORMAT_VTT: _ClassVar[ExportFormat]
    EXPORT_FORMAT_TXT: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSON: _ClassVar[ExportFormat]

class SummaryFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUMMARY_FORMAT_UNSPECIFIED: _ClassVar[SummaryFormat]
    SUMMARY_FORMAT_SHORT: _ClassVar[SummaryFormat]
    SUMMARY_FORMAT_BULLETS: _ClassVar[SummaryFormat]
    SUMMARY_FORMAT_DETAILED: _ClassVar[SummaryFormat]
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_SRT: ExportFormat
EXPORT_FORMAT_VTT: ExportFormat
EXPORT_FORMAT_TXT: ExportFormat
EXPORT_FORMAT_JSON: ExportFormat
SUMMARY_FORMAT_UNSPECIFIED: SummaryFormat
SUMMARY_FORMAT_SHORT: SummaryFormat
SUMMARY_FORMAT_BULLETS: SummaryFormat
SUMMARY_FORMAT_DETAILED: SummaryFormat

class GetTranscriptRequest(_message.Message):
    __slots__ = ("name", "omit_words", "translation_language")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OMIT_WORDS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    omit_words: bool
    translation_language: str
    def __init__(self, name: _Optional[str] = ..., omit_words: _Optional[bool] = ..., translation_language: _Optional[str] = ...) -> None: ...

class GetTranscriptResponse(_message.Message):
    __slots__ = ("transcript",)
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    transcript: Transcript
    def __init__(self, transcript: _Optional[_Union[Transcript, _Mapping]] = ...) -> None: ...

class GetPartialTranscriptRequest(_message.Message):
    __slots__ = ("name", "chunk_indexes", "omit_words")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEXES_FIELD_NUMBER: _ClassVar[int]
    OMIT_WORDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    chunk_indexes: _containers.RepeatedScalarFieldContainer[int]
    omit_words: bool
    def __init__(self, name: _Optional[str] = ..., chunk_indexes: _Optional[_Iterable[int]] = ..., omit_words: _Optional[bool] = ...) -> None: ...

class GetPartialTranscriptResponse(_message.Message):
    __slots__ = ("name", "chunk_count", "chunks", "finished_chunk_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    chunk_count: int
    chunks: _containers.RepeatedCompositeFieldContainer[PartialChunk]
    finished_chunk_count: int
    def __init__(self, name: _Optional[str] = ..., chunk_count: _Optional[int] = ..., chunks: _Optional[_Iterable[_Union[PartialChunk, _Mapping]]] = ..., finished_chunk_count: _Optional[int] = ...) -> None: ...

class PartialChunk(_message.Message):
    __slots__ = ("index", "start_seconds", "end_seconds", "segments")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    start_seconds: float
    end_seconds: float
    segments: _containers.RepeatedCompositeFieldContainer[PartialSegment]
    def __init__(self, index: _Optional[int] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., segments: _Optional[_Iterable[_Union[PartialSegment, _Mapping]]] = ...) -> None: ...

class PartialSegment(_message.Message):
    __slots__ = ("start_seconds", "end_seconds", "text", "words")
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    start_seconds: float
    end_seconds: float
    text: str
    words: _containers.RepeatedCompositeFieldContainer[Word]
    def __init__(self, start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., text: _Optional[str] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ...) -> None: ...

class Transcript(_message.Message):
    __slots__ = ("name", "language", "language_probability", "duration_seconds", "text", "segments", "model", "create_time", "language_assumed", "languages", "speakers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_ASSUMED_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    language: str
    language_probability: float
    duration_seconds: float
    text: str
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    model: str
    create_time: _timestamp_pb2.Timestamp
    language_assumed: bool
    languages: _containers.RepeatedCompositeFieldContainer[LanguageShare]
    speakers: _containers.RepeatedCompositeFieldContainer[Speaker]
    def __init__(self, name: _Optional[str] = ..., language: _Optional[str] = ..., language_probability: _Optional[float] = ..., duration_seconds: _Optional[float] = ..., text: _Optional[str] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., model: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., language_assumed: _Optional[bool] = ..., languages: _Optional[_Iterable[_Union[LanguageShare, _Mapping]]] = ..., speakers: _Optional[_Iterable[_Union[Speaker, _Mapping]]] = ...) -> None: ...

class LanguageShare(_message.Message):
    __slots__ = ("language", "share")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    language: str
    share: float
    def __init__(self, language: _Optional[str] = ..., share: _Optional[float] = ...) -> None: ...

class Speaker(_message.Message):
    __slots__ = ("name", "display_name", "speaking_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEAKING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    speaking_seconds: float
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., speaking_seconds: _Optional[float] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("index", "start_seconds", "end_seconds", "text", "words", "confidence", "low_confidence", "suspected_hallucination", "jyutping", "yale", "language", "language_probability", "other_language_suspected", "speaker", "speaker_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    LOW_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SUSPECTED_HALLUCINATION_FIELD_NUMBER: _ClassVar[int]
    JYUTPING_FIELD_NUMBER: _ClassVar[int]
    YALE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    OTHER_LANGUAGE_SUSPECTED_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    start_seconds: float
    end_seconds: float
    text: str
    words: _containers.RepeatedCompositeFieldContainer[Word]
    confidence: float
    low_confidence: bool
    suspected_hallucination: bool
    jyutping: str
    yale: str
    language: str
    language_probability: float
    other_language_suspected: bool
    speaker: str
    speaker_id: str
    def __init__(self, index: _Optional[int] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., text: _Optional[str] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., confidence: _Optional[float] = ..., low_confidence: _Optional[bool] = ..., suspected_hallucination: _Optional[bool] = ..., jyutping: _Optional[str] = ..., yale: _Optional[str] = ..., language: _Optional[str] = ..., language_probability: _Optional[float] = ..., other_language_suspected: _Optional[bool] = ..., speaker: _Optional[str] = ..., speaker_id: _Optional[str] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("start_seconds", "end_seconds", "text", "probability", "jyutping", "yale", "speaker_id")
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    JYUTPING_FIELD_NUMBER: _ClassVar[int]
    YALE_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_ID_FIELD_NUMBER: _ClassVar[int]
    start_seconds: float
    end_seconds: float
    text: str
    probability: float
    jyutping: str
    yale: str
    speaker_id: str
    def __init__(self, start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., text: _Optional[str] = ..., probability: _Optional[float] = ..., jyutping: _Optional[str] = ..., yale: _Optional[str] = ..., speaker_id: _Optional[str] = ...) -> None: ...

class CaptionOptions(_message.Message):
    __slots__ = ("max_chars_per_line", "max_lines", "max_duration_seconds", "romanization_line")
    MAX_CHARS_PER_LINE_FIELD_NUMBER: _ClassVar[int]
    MAX_LINES_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ROMANIZATION_LINE_FIELD_NUMBER: _ClassVar[int]
    max_chars_per_line: int
    max_lines: int
    max_duration_seconds: float
    romanization_line: bool
    def __init__(self, max_chars_per_line: _Optional[int] = ..., max_lines: _Optional[int] = ..., max_duration_seconds: _Optional[float] = ..., romanization_line: _Optional[bool] = ...) -> None: ...

class ExportTranscriptRequest(_message.Message):
    __slots__ = ("name", "format", "caption_options", "translation_language")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CAPTION_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: ExportFormat
    caption_options: CaptionOptions
    translation_language: str
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[ExportFormat, str]] = ..., caption_options: _Optional[_Union[CaptionOptions, _Mapping]] = ..., translation_language: _Optional[str] = ...) -> None: ...

class ExportTranscriptResponse(_message.Message):
    __slots__ = ("content", "mime_type", "filename")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    content: str
    mime_type: str
    filename: str
    def __init__(self, content: _Optional[str] = ..., mime_type: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class GetSummaryRequest(_message.Message):
    __slots__ = ("name", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: SummaryFormat
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[SummaryFormat, str]] = ...) -> None: ...

class GetSummaryResponse(_message.Message):
    __slots__ = ("text", "bullets", "provider")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BULLETS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    text: str
    bullets: _containers.RepeatedScalarFieldContainer[str]
    provider: str
    def __init__(self, text: _Optional[str] = ..., bullets: _Optional[_Iterable[str]] = ..., provider: _Optional[str] = ...) -> None: ...

class ListChaptersRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListChaptersResponse(_message.Message):
    __slots__ = ("chapters",)
    CHAPTERS_FIELD_NUMBER: _ClassVar[int]
    chapters: _containers.RepeatedCompositeFieldContainer[Chapter]
    def __init__(self, chapters: _Optional[_Iterable[_Union[Chapter, _Mapping]]] = ...) -> None: ...

class Chapter(_message.Message):
    __slots__ = ("title", "start_seconds", "end_seconds")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    title: str
    start_seconds: float
    end_seconds: float
    def __init__(self, title: _Optional[str] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ...) -> None: ...

class ListHighlightsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListHighlightsResponse(_message.Message):
    __slots__ = ("highlights",)
    HIGHLIGHTS_FIELD_NUMBER: _ClassVar[int]
    highlights: _containers.RepeatedCompositeFieldContainer[Highlight]
    def __init__(self, highlights: _Optional[_Iterable[_Union[Highlight, _Mapping]]] = ...) -> None: ...

class Highlight(_message.Message):
    __slots__ = ("name", "start_seconds", "end_seconds", "score", "reason", "text", "clip_size_bytes", "clip_mime_type", "captions_srt", "speaker", "clip_url", "clip_url_expire_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CLIP_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CLIP_MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    CAPTIONS_SRT_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    CLIP_URL_FIELD_NUMBER: _ClassVar[int]
    CLIP_URL_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    start_seconds: float
    end_seconds: float
    score: float
    reason: str
    text: str
    clip_size_bytes: int
    clip_mime_type: str
    captions_srt: str
    speaker: str
    clip_url: str
    clip_url_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., score: _Optional[float] = ..., reason: _Optional[str] = ..., text: _Optional[str] = ..., clip_size_bytes: _Optional[int] = ..., clip_mime_type: _Optional[str] = ..., captions_srt: _Optional[str] = ..., speaker: _Optional[str] = ..., clip_url: _Optional[str] = ..., clip_url_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReadClipRequest(_message.Message):
    __slots__ = ("name", "offset_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    offset_bytes: int
    def __init__(self, name: _Optional[str] = ..., offset_bytes: _Optional[int] = ...) -> None: ...

class ReadClipResponse(_message.Message):
    __slots__ = ("offset_bytes", "data", "size_bytes")
    OFFSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    offset_bytes: int
    data: bytes
    size_bytes: int
    def __init__(self, offset_bytes: _Optional[int] = ..., data: _Optional[bytes] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class AskQuestionRequest(_message.Message):
    __slots__ = ("question", "name")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    question: str
    name: str
    def __init__(self, question: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class AskQuestionResponse(_message.Message):
    __slots__ = ("answer", "citations", "provider")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    answer: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    provider: str
    def __init__(self, answer: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., provider: _Optional[str] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("job", "start_seconds", "end_seconds", "text", "speaker")
    JOB_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    job: str
    start_seconds: float
    end_seconds: float
    text: str
    speaker: str
    def __init__(self, job: _Optional[str] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., text: _Optional[str] = ..., speaker: _Optional[str] = ...) -> None: ...

class RenameSpeakerRequest(_message.Message):
    __slots__ = ("name", "display_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class RenameSpeakerResponse(_message.Message):
    __slots__ = ("speaker",)
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    speaker: Speaker
    def __init__(self, speaker: _Optional[_Union[Speaker, _Mapping]] = ...) -> None: ...
