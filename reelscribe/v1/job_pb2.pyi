import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_UNSPECIFIED: _ClassVar[Stage]
    STAGE_QUEUED: _ClassVar[Stage]
    STAGE_INGEST: _ClassVar[Stage]
    STAGE_PROBE: _ClassVar[Stage]
    STAGE_EXTRACT_AUDIO: _ClassVar[Stage]
    STAGE_DETECT_SPEECH: _ClassVar[Stage]
    STAGE_TRANSCRIBE: _ClassVar[Stage]
    STAGE_MERGE: _ClassVar[Stage]
    STAGE_INDEX: _ClassVar[Stage]
    STAGE_ANALYZE: _ClassVar[Stage]
    STAGE_HIGHLIGHTS: _ClassVar[Stage]
    STAGE_RENDER_CLIPS: _ClassVar[Stage]
    STAGE_TRANSLATE: _ClassVar[Stage]
    STAGE_ROMANIZE: _ClassVar[Stage]
    STAGE_FINALIZE: _ClassVar[Stage]
    STAGE_DIARIZE: _ClassVar[Stage]

class JobEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_EVENT_KIND_UNSPECIFIED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_STATE_CHANGED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_STAGE_STARTED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_PROGRESS: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_STAGE_FINISHED: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_PARTIAL_RESULT: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_HEARTBEAT: _ClassVar[JobEventKind]
    JOB_EVENT_KIND_SNAPSHOT: _ClassVar[JobEventKind]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
STAGE_UNSPECIFIED: Stage
STAGE_QUEUED: Stage
STAGE_INGEST: Stage
STAGE_PROBE: Stage
STAGE_EXTRACT_AUDIO: Stage
STAGE_DETECT_SPEECH: Stage
STAGE_TRANSCRIBE: Stage
STAGE_MERGE: Stage
STAGE_INDEX: Stage
STAGE_ANALYZE: Stage
STAGE_HIGHLIGHTS: Stage
STAGE_RENDER_CLIPS: Stage
STAGE_TRANSLATE: Stage
STAGE_ROMANIZE: Stage
STAGE_FINALIZE: Stage
STAGE_DIARIZE: Stage
JOB_EVENT_KIND_UNSPECIFIED: JobEventKind
JOB_EVENT_KIND_STATE_CHANGED: JobEventKind
JOB_EVENT_KIND_STAGE_STARTED: JobEventKind
JOB_EVENT_KIND_PROGRESS: JobEventKind
JOB_EVENT_KIND_STAGE_FINISHED: JobEventKind
JOB_EVENT_KIND_PARTIAL_RESULT: JobEventKind
JOB_EVENT_KIND_HEARTBEAT: JobEventKind
JOB_EVENT_KIND_SNAPSHOT: JobEventKind

class Job(_message.Message):
    __slots__ = ("name", "media", "source_uri", "options", "state", "stage", "progress", "message", "error", "create_time", "update_time", "start_time", "end_time", "last_event_seq", "parent", "owner", "media_duration", "cache_hit", "attempts", "labels", "warnings", "source_page")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQ_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    MEDIA_DURATION_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    media: str
    source_uri: str
    options: JobOptions
    state: JobState
    stage: Stage
    progress: float
    message: str
    error: JobError
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    last_event_seq: int
    parent: str
    owner: str
    media_duration: _duration_pb2.Duration
    cache_hit: bool
    attempts: int
    labels: _containers.ScalarMap[str, str]
    warnings: _containers.RepeatedCompositeFieldContainer[JobWarning]
    source_page: SourcePage
    def __init__(self, name: _Optional[str] = ..., media: _Optional[str] = ..., source_uri: _Optional[str] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., stage: _Optional[_Union[Stage, str]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_event_seq: _Optional[int] = ..., parent: _Optional[str] = ..., owner: _Optional[str] = ..., media_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., cache_hit: _Optional[bool] = ..., attempts: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., warnings: _Optional[_Iterable[_Union[JobWarning, _Mapping]]] = ..., source_page: _Optional[_Union[SourcePage, _Mapping]] = ...) -> None: ...

class SourcePage(_message.Message):
    __slots__ = ("title", "uploader", "claimed_duration", "chapters")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    UPLOADER_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_DURATION_FIELD_NUMBER: _ClassVar[int]
    CHAPTERS_FIELD_NUMBER: _ClassVar[int]
    title: str
    uploader: str
    claimed_duration: _duration_pb2.Duration
    chapters: _containers.RepeatedCompositeFieldContainer[PageChapter]
    def __init__(self, title: _Optional[str] = ..., uploader: _Optional[str] = ..., claimed_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., chapters: _Optional[_Iterable[_Union[PageChapter, _Mapping]]] = ...) -> None: ...

class PageChapter(_message.Message):
    __slots__ = ("title", "start_offset", "end_offset")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    title: str
    start_offset: _duration_pb2.Duration
    end_offset: _duration_pb2.Duration
    def __init__(self, title: _Optional[str] = ..., start_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., end_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class JobWarning(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class JobOptions(_message.Message):
    __slots__ = ("language", "model", "disable_word_timestamps", "skip_cache", "extra_stages", "callback_uri", "highlight_count", "translate_to", "callback_stage_events", "clip_burn_captions", "clip_vertical", "diarize", "speaker_count", "max_speakers")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DISABLE_WORD_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    SKIP_CACHE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_STAGES_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_URI_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHT_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_TO_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_STAGE_EVENTS_FIELD_NUMBER: _ClassVar[int]
    CLIP_BURN_CAPTIONS_FIELD_NUMBER: _ClassVar[int]
    CLIP_VERTICAL_FIELD_NUMBER: _ClassVar[int]
    DIARIZE_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    language: str
    model: str
    disable_word_timestamps: bool
    skip_cache: bool
    extra_stages: _containers.RepeatedScalarFieldContainer[Stage]
    callback_uri: str
    highlight_count: int
    translate_to: str
    callback_stage_events: bool
    clip_burn_captions: bool
    clip_vertical: bool
    diarize: bool
    speaker_count: int
    max_speakers: int
    def __init__(self, language: _Optional[str] = ..., model: _Optional[str] = ..., disable_word_timestamps: _Optional[bool] = ..., skip_cache: _Optional[bool] = ..., extra_stages: _Optional[_Iterable[_Union[Stage, str]]] = ..., callback_uri: _Optional[str] = ..., highlight_count: _Optional[int] = ..., translate_to: _Optional[str] = ..., callback_stage_events: _Optional[bool] = ..., clip_burn_captions: _Optional[bool] = ..., clip_vertical: _Optional[bool] = ..., diarize: _Optional[bool] = ..., speaker_count: _Optional[int] = ..., max_speakers: _Optional[int] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("reason", "message", "stage")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    stage: Stage
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ..., stage: _Optional[_Union[Stage, str]] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("seq", "time", "kind", "job", "stage", "stage_progress", "eta", "message", "chunk_index", "chunk_count")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STAGE_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: _timestamp_pb2.Timestamp
    kind: JobEventKind
    job: Job
    stage: Stage
    stage_progress: float
    eta: _duration_pb2.Duration
    message: str
    chunk_index: int
    chunk_count: int
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[JobEventKind, str]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., stage: _Optional[_Union[Stage, str]] = ..., stage_progress: _Optional[float] = ..., eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., message: _Optional[str] = ..., chunk_index: _Optional[int] = ..., chunk_count: _Optional[int] = ...) -> None: ...

class Media(_message.Message):
    __slots__ = ("name", "filename", "size_bytes", "sha256", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    filename: str
    size_bytes: int
    sha256: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
