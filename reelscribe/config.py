"""Settings, read once from `REELSCRIBE_*` environment variables."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "reelscribe"


def _default_web_static_dir() -> Path:
    # The console is built into the source tree (clients/web/dist), beside this package.
    return Path(__file__).resolve().parent.parent / "clients" / "web" / "dist"


def _default_model_cache_dir() -> Path:
    return Path.home() / ".cache" / "reelscribe" / "models"


class Settings(BaseSettings):
    """All configuration of a Reelscribe process. Frozen: read once at start."""

    model_config = SettingsConfigDict(env_prefix="REELSCRIBE_", frozen=True, extra="ignore")

    # Each field's `#:` comment is its documentation: scripts/gen_config_docs.py
    # turns the fields, grouped by the `# -- title --` lines, into
    # docs/configuration.md. A `#: Default:` line gives the documented default of
    # a field whose default is computed on the machine that runs it.

    # -- Services and addresses --------------------------------------------------------
    #: Postgres URL; empty means "start the embedded Postgres" (`reelscribe up`).
    database_url: str = ""
    #: Redis/Valkey URL (the Dramatiq broker, event fan-out, rate limits, caches);
    #: empty means "start the embedded Valkey" (`reelscribe up`).
    redis_url: str = ""
    #: Where blobs, scratch files, embedded databases, generated secrets and `up`'s logs live.
    #: Default: `~/.local/share/reelscribe`
    data_dir: Path = Field(default_factory=_default_data_dir)
    #: Address the gRPC server listens on.
    listen_address: str = "127.0.0.1:50051"
    #: Address the client commands (`reelscribe submit`, ...) connect to.
    server_address: str = "127.0.0.1:50051"

    # -- Authentication ----------------------------------------------------------------
    #: HS256 secret; empty means a random secret kept in `<data_dir>/jwt-secret`.
    jwt_secret: SecretStr = SecretStr("")
    #: Allowed JWT algorithms (from configuration only, never from the token).
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    #: Leeway for `exp`/`nbf` checks.
    jwt_leeway_s: float = 30.0
    #: Required `iss` claim (exact match).
    jwt_issuer: str = "reelscribe"
    #: Required `aud` claim (exact match).
    jwt_audience: str = "reelscribe"
    #: JWKS URL with the identity provider's public keys, for RS256/ES256 tokens
    #: (add those algorithms to `jwt_algorithms`).
    jwks_url: str = ""
    #: Unknown key ids trigger a JWKS fetch at most this often.
    jwks_min_refetch_s: float = 60.0
    #: Longest lifetime a token may claim (`exp` - `iat`, and `exp` - now);
    #: longer-lived tokens are refused.
    jwt_max_lifetime_s: float = 30 * 24 * 3600.0

    # -- Blob storage ------------------------------------------------------------------
    #: Where uploads, clips and the audio a job's stages hand each other live:
    #: `local` (files under `<data_dir>/blobs`; one machine, or several on a shared
    #: disk) or `s3` (any S3-compatible store: servers and workers then share
    #: nothing but Postgres, Redis and the bucket). `reelscribe up --s3` with no
    #: `s3_endpoint_url` starts an embedded SeaweedFS.
    blob_backend: Literal["local", "s3"] = "local"
    #: S3 endpoint URL, e.g. `http://127.0.0.1:8333` for SeaweedFS or MinIO;
    #: empty means AWS S3 itself (or, under `reelscribe up`, the embedded SeaweedFS).
    s3_endpoint_url: str = ""
    #: Bucket holding every blob (keys start with a hash of the owner).
    s3_bucket: str = "reelscribe"
    #: Region the bucket is in (self-hosted stores accept any).
    s3_region: str = "us-east-1"
    #: Access key id; empty means boto3's own lookup (environment, instance role).
    s3_access_key_id: str = ""
    #: Secret access key for `s3_access_key_id`.
    s3_secret_access_key: SecretStr = SecretStr("")
    #: With S3, ListHighlights hands out a presigned URL for each rendered clip,
    #: valid this long (0: no URLs; ReadClip streams clips either way). The URL
    #: names `s3_endpoint_url`, which clients must then be able to reach.
    clip_url_ttl_s: float = 0.0
    #: How long a worker's stage waits for an unreachable S3 store to come back
    #: (trying again with backoff) before the stage fails and is retried; servers
    #: answer UNAVAILABLE at once.
    blob_outage_wait_s: float = 600.0

    # -- Uploads -----------------------------------------------------------------------
    #: Largest accepted upload (and URL download); larger ones are RESOURCE_EXHAUSTED.
    max_upload_bytes: int = 2 * 1024**3
    #: Largest accepted chunk in an upload stream.
    max_chunk_bytes: int = 1024 * 1024
    #: Bytes a user on the `free` plan may keep stored: uploaded media plus the
    #: declared size of uploads in progress; 0 = unlimited. `premium` and admins
    #: are unlimited.
    free_max_stored_bytes: int = 5 * 1024**3
    #: Resumable uploads with no activity for this long are removed (their rows and
    #: partial files); `GetUpload` then answers NOT_FOUND with `UPLOAD_EXPIRED`.
    upload_expiry_s: float = 24 * 3600.0
    #: How often a worker removes expired uploads (one worker at a time).
    upload_sweep_interval_s: float = 600.0
    #: How often each worker removes the scratch files of ended jobs (also at start):
    #: what a worker killed mid-stage left on its own disk.
    scratch_sweep_interval_s: float = 600.0

    # -- Speech to text ----------------------------------------------------------------
    #: Speech model of jobs that do not name one: `base` (multilingual, detects the
    #: language) or `tiny.en` (English only, about 1.7 times faster). `reelscribe
    #: models` lists the installed ones.
    whisper_model_name: str = "base"
    #: Where models shipped in parts are joined into loadable directories (once per
    #: machine; `reelscribe models --install` does it ahead of time).
    #: Default: `~/.cache/reelscribe/models`
    model_cache_dir: Path = Field(default_factory=_default_model_cache_dir)
    #: CTranslate2 compute type on CPU.
    whisper_compute_type: str = "int8"
    #: Beam size; 1 is greedy decoding, the fastest on CPU.
    whisper_beam_size: int = 1
    #: CTranslate2 threads per transcription. One per worker process, with one
    #: process per core, transcribes chunks in parallel with the least overhead
    #: (see BENCHMARKS.md); 0 lets CTranslate2 choose.
    whisper_cpu_threads: int = 1

    # -- Media and chunking ------------------------------------------------------------
    #: Media longer than this (by its own claim) is refused at CreateJob.
    max_media_duration_s: float = 6 * 3600.0
    #: Target length of one transcription chunk (cut at the nearest silence).
    chunk_target_s: float = 120.0
    #: Silences longer than this are shortened to it before transcription.
    keep_silence_s: float = 0.6
    #: Threads the voice-activity detection of one job uses (it runs before a
    #: job's chunks fan out, so it is the part of a long job no other worker
    #: can share; its result does not depend on this).
    vad_threads: int = 2

    # -- URL sources -------------------------------------------------------------------
    #: Wall-clock limit of downloading a URL source.
    url_fetch_timeout_s: float = 600.0
    #: Networks URL sources may reach although not public, e.g. `["10.1.2.0/24"]`
    #: for an intranet media server. Empty: public addresses only.
    url_allowed_networks: tuple[str, ...] = ()

    # -- Search ------------------------------------------------------------------------
    #: Sentence-transformers model for search (384-d, mean pooling); empty means the
    #: bundled MiniLM. It runs under ONNX Runtime from an ONNX copy exported once
    #: into `model_cache_dir` (`reelscribe models --install`, or the first use).
    embedding_model_dir: str = ""
    #: ONNX Runtime threads of one search-model call (server queries, a worker's
    #: indexing). One, like Whisper's: workers run one process per core.
    search_model_threads: int = Field(default=1, ge=1)
    #: Load the search model when the server starts (about 100 MB, under a second
    #: once exported) instead of on the first search or question that needs it.
    #: Off: a server that is only asked keyword searches never loads it.
    search_model_preload: bool = False
    #: Longest accepted search query, in characters.
    max_query_chars: int = 1000

    # -- Analysis, highlights and questions --------------------------------------------
    #: Analysis provider: `auto` (Gemini when a key is set, else local), `local` or `gemini`.
    analysis_provider: str = "auto"
    #: Gemini API key; `GEMINI_API_KEY` is read too. Empty: the local provider only.
    gemini_api_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("REELSCRIBE_GEMINI_API_KEY", "GEMINI_API_KEY"),
    )
    #: Gemini model used for summaries, chapters, translations and answers.
    gemini_model: str = "gemini-2.5-flash"
    #: Gemini API endpoint; empty means Google's (the tests point it at a local server).
    gemini_base_url: str = ""
    #: Time limit of one Gemini request.
    gemini_timeout_s: float = 60.0
    #: Attempts per Gemini request on 429, 5xx answers and timeouts.
    gemini_max_attempts: int = 4
    #: First delay between Gemini attempts; grows exponentially per attempt.
    gemini_backoff_s: float = 1.0
    #: How long summaries, chapters and translations stay cached.
    analysis_cache_ttl_s: float = 7 * 24 * 3600.0
    #: How long answers to questions stay cached.
    answer_cache_ttl_s: float = 24 * 3600.0
    #: The local provider answers only from passages at least this similar to the
    #: question (cosine, the embedding model's scale; calibrated for MiniLM in
    #: docs/analysis.md); below it the recordings do not answer the question.
    answer_min_similarity: float = 0.3
    #: Highlights chosen when a job does not say how many.
    default_highlight_count: int = 5
    #: Shortest highlight: shorter moments are grown to whole sentences of this length.
    highlight_min_s: float = 5.0
    #: Longest highlight.
    highlight_max_s: float = 60.0

    # -- Costs -------------------------------------------------------------------------
    #: Price of one minute of transcribed audio for cost estimates, in US dollars
    #: (like a hosted Whisper).
    price_per_audio_minute_usd: float = 0.006
    #: Price of one worker CPU hour for cost estimates, in US dollars.
    price_per_cpu_hour_usd: float = 0.05
    #: Price of 1,000 analysis-provider tokens for cost estimates, in US dollars.
    price_per_1k_provider_tokens_usd: float = 0.0004
    #: A day whose cost exceeds the previous day's by more than this raises an alert.
    cost_alert_increase_percent: float = 20.0
    #: How often a worker compares today's cost with yesterday's.
    cost_alert_check_s: float = 300.0

    # -- Workers and queue -------------------------------------------------------------
    #: Dramatiq queue of new jobs; stages of started jobs (chunks, merge, later
    #: stages) use `<name>-next`, whose actors have a higher priority, so workers
    #: finish the jobs they started before starting new ones.
    queue_name: str = "reelscribe"
    #: Worker processes started by `reelscribe up` and `reelscribe worker`.
    #: Default: the number of CPU cores
    worker_processes: int = Field(default_factory=lambda: os.cpu_count() or 1)
    #: Threads per worker process.
    worker_threads: int = 1
    #: After each message, return the worker's free heap pages to the kernel
    #: (glibc `malloc_trim`): a 10-minute job otherwise leaves its peak's freed
    #: memory resident for the process's life (BENCHMARKS.md, "Memory per process").
    worker_trim_heap: bool = True
    #: Once a worker process has run no message for this long, it releases the
    #: speech models it has not used for as long, except the last job's (the
    #: multilingual model an English-only job loaded to check languages, about
    #: 170 MB); 0 keeps every model for the process's life.
    worker_model_idle_s: float = 60.0
    #: Wall-clock limit of transcribing one chunk (the other stages have fixed
    #: limits: prepare 30 min, merge 10 min, later stages 1 h).
    stage_time_limit_s: float = 4 * 3600.0
    #: A job that a worker started this many times without finishing is FAILED.
    max_job_attempts: int = 3
    #: Longest wait between an idle worker's polls of a queue (Dramatiq's
    #: `worker_timeout`, whose own default of 1 s adds up to a second to every
    #: hand-over between stages). Each idle poll costs one small Redis script.
    queue_poll_max_ms: int = 100

    # -- Recovery ----------------------------------------------------------------------
    #: A worker process silent this long is presumed dead and the messages it
    #: holds go to other workers. Live workers beat four times per timeout from
    #: a thread of their own, so stages may run far longer than this.
    broker_heartbeat_timeout_s: float = 60.0
    #: Chance (per million broker commands) of running that redelivery sweep.
    broker_maintenance_chance: int = 1000
    #: How often a worker looks for jobs whose broker message was lost.
    reconcile_interval_s: float = 30.0
    #: Jobs unchanged for this long are checked by the reconciler.
    reconcile_grace_s: float = 60.0
    #: Fault drills: a worker handed media with this SHA-256 exits abruptly,
    #: as if the decoder had crashed. Empty (the default) disables it.
    fault_kill_on_sha256: str = ""

    # -- Webhooks ----------------------------------------------------------------------
    #: HMAC-SHA256 key for webhook signatures; empty means `<data_dir>/webhook-secret`.
    webhook_secret: SecretStr = SecretStr("")
    #: Give up on a webhook delivery after this many attempts.
    webhook_max_attempts: int = 6
    #: First retry delay; doubles per attempt (capped at 10 minutes).
    webhook_backoff_s: float = 2.0
    #: How long a receiver may take to answer.
    webhook_timeout_s: float = 10.0

    # -- Rate limits, quotas and server limits -----------------------------------------
    #: Sustained requests per second per user and method.
    rate_limit_per_s: float = 20.0
    #: Requests per user and method allowed in a burst above the sustained rate.
    rate_limit_burst: int = 40
    #: Per-method overrides, e.g. `{"CreateJob": [2, 10]}` (per second, burst).
    #: `AppendUpload` sends a file 1 MiB per call: 100/s lets one user upload
    #: about 100 MiB/s that way.
    rate_limits: dict[str, tuple[float, int]] = Field(
        default_factory=lambda: {
            "UploadMedia": (2.0, 10),
            "AppendUpload": (100.0, 200),
            "CreateJob": (5.0, 20),
        }
    )
    #: Open streams (watches, uploads) per server process; more are refused.
    max_concurrent_streams: int = 2000
    #: Open streams one user may hold per server process (watches and uploads
    #: together); more are RESOURCE_EXHAUSTED, while other users still get theirs.
    max_streams_per_user: int = 100
    #: Deadline applied to unary calls that arrive without one.
    default_call_timeout_s: float = 60.0
    #: Jobs a user on the `free` plan may keep stored; 0 = unlimited.
    free_max_stored_jobs: int = 25
    #: Minutes of audio a user on the `free` plan may process per UTC day; 0 = unlimited.
    free_audio_minutes_per_day: float = 120.0

    # -- Progress streams --------------------------------------------------------------
    #: Seconds between heartbeats on idle watch streams.
    watch_heartbeat_s: float = 10.0
    #: Events buffered per watcher before it falls back to replay from Postgres.
    watch_buffer_events: int = 256
    #: Minimum seconds between two progress events of one job.
    progress_min_interval_s: float = 0.2

    # -- Metrics -----------------------------------------------------------------------
    #: Port of the server's Prometheus endpoint (`/metrics`); 0 disables it.
    metrics_port: int = 9464
    #: Host the metrics endpoints bind to; empty means the host of `listen_address`
    #: (so `0.0.0.0` in the container image, loopback on a laptop).
    metrics_host: str = ""
    #: Port of a worker's Prometheus endpoint: one per `reelscribe worker` (the
    #: Dramatiq main process), covering all its processes; 0 disables it.
    worker_metrics_port: int = 9191
    #: Directory for the worker processes' shared metric files; empty means a
    #: fresh directory per worker run under the system temp directory.
    worker_metrics_dir: str = ""

    # -- Browser console (gRPC-Web) ----------------------------------------------------
    #: Address of the gRPC-Web listener, which serves the same services to browsers
    #: (and the web console's files) beside native gRPC, e.g. `127.0.0.1:8080`;
    #: empty: off. `reelscribe up` and `reelscribe demo` use `up_web_listen` when
    #: this is empty.
    web_listen: str = ""
    #: The gRPC-Web address `reelscribe up` and `reelscribe demo` give their server
    #: when `web_listen` is empty (they print the console's address); empty: no console.
    up_web_listen: str = "127.0.0.1:8080"
    #: Origins (e.g. `["https://console.example.com"]`) whose pages may call the
    #: gRPC-Web listener from elsewhere: their CORS preflights are answered, other
    #: origins' refused. The console served by the listener itself needs none;
    #: `["*"]` allows any origin (tokens travel in a header, never in cookies).
    web_cors_origins: tuple[str, ...] = ()
    #: Directory of the built web console, served at `/` by the gRPC-Web listener.
    #: Default: clients/web/dist in the source tree (built by the console's npm build)
    web_static_dir: Path = Field(default_factory=_default_web_static_dir)

    # -- Logs and tracing --------------------------------------------------------------
    #: Log rendering: `json`, `console`, or `auto` (console on a terminal, JSON otherwise).
    log_format: Literal["auto", "json", "console"] = "auto"
    #: Minimum log level (`DEBUG`, `INFO`, `WARNING`, `ERROR`).
    log_level: str = "INFO"
    #: OTLP/gRPC endpoint for traces (e.g. `http://collector:4317`); the standard
    #: `OTEL_EXPORTER_OTLP_ENDPOINT` works too. Neither set: tracing is off.
    otel_exporter_otlp_endpoint: str = ""
    #: Append finished spans as JSON lines to this file (debugging and tests).
    otel_traces_file: str = ""

    # -- Shutdown ----------------------------------------------------------------------
    #: On SIGTERM the server refuses new calls, ends streams with UNAVAILABLE
    #: (clients resume) and gives unary calls in flight this long to finish.
    shutdown_grace_s: float = 25.0
    #: On SIGTERM a worker stops taking messages and gives running stages this
    #: long to finish; unfinished ones are redelivered to other workers.
    worker_shutdown_timeout_s: float = 25.0

    @property
    def blob_dir(self) -> Path:
        """Directory of the local blob store."""
        return self.data_dir / "blobs"

    def resolved_jwt_secret(self) -> str:
        """The HS256 secret: configured, or a per-data-dir development secret."""
        return self.jwt_secret.get_secret_value() or self._data_dir_secret("jwt-secret")

    def resolved_webhook_secret(self) -> str:
        """The webhook signing key: configured, or a per-data-dir secret."""
        return self.webhook_secret.get_secret_value() or self._data_dir_secret("webhook-secret")

    def _data_dir_secret(self, name: str) -> str:
        path = self.data_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written once with 0600 so only this user can mint tokens.
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip()

    def speech_model_dir(self, name: str = "") -> str:
        """The directory of speech model `name` (default: `whisper_model_name`),
        joined into `model_cache_dir` on first use; raises ModelError."""
        from reelscribe import speech_models

        model = speech_models.get(name or self.whisper_model_name)
        if model is None:
            raise speech_models.ModelError(
                f"unknown speech model {name or self.whisper_model_name!r}; "
                f"known: {', '.join(speech_models.REGISTRY)}"
            )
        return str(speech_models.model_dir(model, self.model_cache_dir))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
