"""The `gemini` analysis provider: Google's Gemini API through `google-genai`.

Every call asks for JSON (`response_mime_type="application/json"`) matching a
pydantic response schema, and every reply is validated here again: the model's
text is parsed with the same pydantic models and then checked against the
transcript it was given. Nothing the model says is trusted.

Transcripts go to the model as lines ``[index] start-end text`` (times in
seconds, two decimals) so it can cite lines and times. `analyze` and
`translate` label lines with `Seg.index`; `answer` labels passages by their
position (0, 1, ...) because `Answer.cited` holds positions.

Calls per operation (made one after another, so a scripted fake sees them in
order):

* `analyze`: one ``analysis`` call (summaries, chapters, topics) over the whole
  transcript, then one ``importance`` call per `importance_batch` segments.
  An empty transcript makes no call.
* `answer`: one ``answer`` call; no passages makes no call.
* `translate`: one ``translation`` call per `translate_batch` segments; no
  segments makes no call.

What is checked in every reply, and what is repaired rather than rejected, is
listed in `reelscribe.insights.gemini_replies`.

Errors (`ProviderError.reason`):

* ``PROVIDER_REJECTED``: a 4xx other than 408/429 (bad key, bad request,
  unknown model, ...), a prompt Gemini blocked, or a malformed language tag.
* ``PROVIDER_UNAVAILABLE``: 408, 429, 5xx, timeouts and connection failures
  still failing after `max_attempts` tries. Tries wait `backoff_initial_s`,
  then twice that, and so on up to `backoff_max_s` (no jitter, so tests are
  deterministic); a longer server hint (``Retry-After`` or ``RetryInfo``) is
  honoured up to `backoff_max_s`.
* ``PROVIDER_BAD_OUTPUT``: unparsable, schema-invalid or inconsistent output,
  still so after `bad_output_retries` fresh calls.

The SDK's own retries are off (each `generate_content` is one HTTP request);
this module's loop does the retrying. Token usage is summed over every call an
operation made, including calls whose output was then rejected and retried.

Long on purpose: it is one provider class whose three operations share one
call, retry and usage-counting loop, and the error rules above describe that
loop as a whole; the reply checks already live in `gemini_replies`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import structlog
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from google.genai.client import DebugConfig
from pydantic import BaseModel, ValidationError

from reelscribe.insights.base import (
    SUMMARY_FORMATS,
    Analysis,
    Answer,
    Importance,
    ProviderError,
    Seg,
    Summary,
    Translation,
    Usage,
)
from reelscribe.insights.gemini_replies import (
    SYSTEM,
    BadOutput,
    GeminiAnalysis,
    GeminiAnswer,
    GeminiImportance,
    GeminiTranslation,
    Reply,
    analysis_prompt,
    answer_prompt,
    check_analysis,
    check_answer,
    check_importance,
    check_translation,
    importance_prompt,
    labels_of,
    translation_prompt,
)

log = structlog.get_logger(__name__)

#: Google's endpoint, passed explicitly so the SDK never falls back to
#: GOOGLE_GEMINI_BASE_URL from the environment.
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"

#: HTTP statuses worth retrying; every other 4xx is the caller's fault.
_RETRYABLE_4XX = frozenset({408, 429})

#: Characters of an error body quoted in ProviderError messages.
_MAX_DETAIL = 300

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")


def _transport_errors() -> tuple[type[Exception], ...]:
    """Network and timeout exceptions of whichever HTTP package the SDK uses."""
    found: list[type[Exception]] = []
    try:
        import httpx2

        found.append(httpx2.TransportError)
    except ImportError:  # pragma: no cover - google-genai 3 depends on httpx2
        pass
    try:
        import httpx  # type: ignore[import-not-found,unused-ignore]

        found.append(httpx.TransportError)
    except ImportError:
        pass
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


def _describe_api_error(exc: genai_errors.APIError) -> str:
    detail = exc.message or str(exc.details)
    status = f" {exc.status}" if exc.status else ""
    return f"HTTP {exc.code}{status}: {detail[:_MAX_DETAIL]}"


def _retry_hint_s(exc: genai_errors.APIError) -> float:
    """Seconds the server asked us to wait (Retry-After or RetryInfo), or 0."""
    headers = getattr(exc.response, "headers", None)
    if headers is not None:
        try:
            value = float(headers.get("retry-after", ""))
            if math.isfinite(value) and value > 0:
                return value
        except (TypeError, ValueError):
            pass
    details = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else None
    for item in (details or {}).get("details") or []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                value = float(delay[:-1])
            except ValueError:
                continue
            if math.isfinite(value) and value > 0:
                return value
    return 0.0


def _usage(response: genai_types.GenerateContentResponse) -> Usage:
    """Tokens billed for one call; thinking tokens count as output."""
    meta = response.usage_metadata
    if meta is None:
        return Usage()
    return Usage(
        input_tokens=meta.prompt_token_count or 0,
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
    )


_M = TypeVar("_M", bound=Reply)
_R = TypeVar("_R")


class GeminiProvider:
    """Analysis through the Gemini API. Blocking and safe to share between threads."""

    name = "gemini"

    def __init__(
        self,
        api_key: str,
        model: str = "gemini-2.5-flash",
        base_url: str = "",
        timeout_s: float = 60.0,
        max_attempts: int = 4,
        backoff_initial_s: float = 1.0,
        *,
        backoff_max_s: float = 30.0,
        bad_output_retries: int = 1,
        api_version: str = "v1beta",
        importance_batch: int = 200,
        translate_batch: int = 100,
        temperature: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the client; nothing is read from the environment.

        `base_url` empty means Google's endpoint. `timeout_s` bounds each HTTP
        attempt (connect, and each read); `max_attempts` counts the first try.
        `sleep` is how backoff waits (tests may record it).
        """
        if not api_key.strip():
            raise ValueError("the gemini provider needs an API key")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if backoff_initial_s < 0 or backoff_max_s < 0 or bad_output_retries < 0:
            raise ValueError("backoffs and bad_output_retries must not be negative")
        if importance_batch < 1 or translate_batch < 1:
            raise ValueError("batch sizes must be at least 1")
        self.model = model
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.bad_output_retries = bad_output_retries
        self.importance_batch = importance_batch
        self.translate_batch = translate_batch
        self.temperature = temperature
        self._sleep = sleep
        self._client = genai.Client(
            vertexai=False,
            api_key=api_key,
            # An explicit DebugConfig keeps the SDK off its GOOGLE_GENAI_CLIENT_MODE
            # record/replay switch.
            debug_config=DebugConfig(client_mode=None, replays_directory=None, replay_id=None),
            http_options=genai_types.HttpOptions(
                base_url=base_url or DEFAULT_BASE_URL,
                api_version=api_version,
                timeout=max(1, math.ceil(timeout_s * 1000)),  # milliseconds
                retry_options=None,  # one HTTP request per call; we retry below
            ),
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    # --- The Provider protocol.

    def analyze(self, segments: Sequence[Seg]) -> Analysis:
        """Summaries, chapters, topics and per-segment importance; see the module doc."""
        segs = list(segments)
        if not segs:
            return Analysis(
                summaries=tuple(Summary(format=f, text="") for f in SUMMARY_FORMATS),
                chapters=(),
                importance=(),
            )
        labels = labels_of(segs)
        duration = max(0.0, *(s.end_s for s in segs))
        overview, usage = self._call(
            "analysis",
            analysis_prompt(labels, segs, duration),
            GeminiAnalysis,
            functools.partial(check_analysis, duration=duration),
        )
        importance: list[Importance] = []
        for start in range(0, len(segs), self.importance_batch):
            batch = segs[start : start + self.importance_batch]
            batch_labels = labels[start : start + self.importance_batch]
            rated, used = self._call(
                "importance",
                importance_prompt(batch_labels, batch, overview.short),
                GeminiImportance,
                functools.partial(check_importance, labels=batch_labels),
            )
            importance.extend(rated)
            usage += used
        bullets = overview.bullets
        bullet_text = "\n".join(f"- {b}" for b in bullets)
        return Analysis(
            summaries=(
                Summary(format="short", text=overview.short),
                Summary(format="bullets", text=bullet_text, bullets=bullets),
                Summary(format="detailed", text=overview.detailed),
            ),
            chapters=overview.chapters,
            importance=tuple(importance),
            topics=overview.topics,
            usage=usage,
        )

    def answer(self, question: str, passages: Sequence[Seg]) -> Answer:
        """Answer from `passages` only; `cited` holds passage positions."""
        passages = list(passages)
        if not passages:
            return Answer(text="The transcript has nothing that answers this question.", cited=())
        (text, cited), usage = self._call(
            "answer",
            answer_prompt(question, passages),
            GeminiAnswer,
            functools.partial(check_answer, count=len(passages)),
        )
        return Answer(text=text, cited=cited, usage=usage)

    def translate(self, segments: Sequence[Seg], language: str) -> Translation:
        """One translated text per segment, in order, batched by `translate_batch`."""
        if not _LANGUAGE_TAG.match(language):
            raise ProviderError("PROVIDER_REJECTED", f"{language!r} is not a BCP-47 language tag")
        segs = list(segments)
        labels = labels_of(segs)
        texts: list[str] = []
        usage = Usage()
        for start in range(0, len(segs), self.translate_batch):
            batch = segs[start : start + self.translate_batch]
            batch_labels = labels[start : start + self.translate_batch]
            got, used = self._call(
                "translation",
                translation_prompt(batch_labels, batch, language),
                GeminiTranslation,
                functools.partial(check_translation, labels=batch_labels),
            )
            texts.extend(got)
            usage += used
        return Translation(language=language, texts=tuple(texts), usage=usage)

    # --- Calls.

    def _call(
        self, kind: str, prompt: str, schema: type[_M], check: Callable[[_M], _R]
    ) -> tuple[_R, Usage]:
        """One validated reply, retrying bad output `bad_output_retries` times."""
        usage = Usage()
        tries = self.bad_output_retries + 1
        for attempt in range(1, tries + 1):
            response = self._generate(kind, prompt, schema)
            usage += _usage(response)
            try:
                return check(self._parse(response, schema)), usage
            except BadOutput as exc:
                if attempt == tries:
                    raise ProviderError(
                        "PROVIDER_BAD_OUTPUT", f"Gemini's {kind} reply was unusable: {exc}"
                    ) from exc
                log.warning("gemini reply unusable; asking again", kind=kind, problem=str(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _parse(response: genai_types.GenerateContentResponse, schema: type[_M]) -> _M:
        if not response.candidates:
            feedback = response.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                raise ProviderError(
                    "PROVIDER_REJECTED", f"Gemini blocked the prompt ({feedback.block_reason})"
                )
            raise BadOutput("no candidates in the reply")
        finish = response.candidates[0].finish_reason
        text = response.text
        if not text:
            raise BadOutput(f"no text in the reply (finish reason {finish})")
        try:
            return schema.model_validate_json(text)
        except ValidationError as exc:
            errors = exc.errors()
            problem = errors[0]["msg"] if errors else "invalid"
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
            if where:
                problem += f" at {where}"
            if finish is not None and finish != genai_types.FinishReason.STOP:
                problem += f" (finish reason {finish})"
            raise BadOutput(f"not valid {schema.__name__} JSON: {problem}") from exc

    def _generate(
        self, kind: str, prompt: str, schema: type[BaseModel]
    ) -> genai_types.GenerateContentResponse:
        """One successful HTTP exchange, retrying transient failures."""
        config = genai_types.GenerateContentConfig(
            system_instruction=SYSTEM,
            response_mime_type="application/json",
            response_schema=schema,
            temperature=self.temperature,
        )
        failure: Exception | None = None
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            hint = 0.0
            try:
                return self._client.models.generate_content(
                    model=self.model, contents=prompt, config=config
                )
            except genai_errors.APIError as exc:
                if 400 <= exc.code < 500 and exc.code not in _RETRYABLE_4XX:
                    raise ProviderError(
                        "PROVIDER_REJECTED",
                        f"Gemini rejected the {kind} request: {_describe_api_error(exc)}",
                    ) from exc
                failure, problem, hint = exc, _describe_api_error(exc), _retry_hint_s(exc)
            except _TRANSPORT_ERRORS as exc:
                failure, problem = exc, f"{type(exc).__name__}: {exc}"
            except (
                json.JSONDecodeError,
                genai_errors.UnknownApiResponseError,
                ValidationError,
            ) as exc:
                # A 200 whose body is not a GenerateContentResponse.
                raise ProviderError(
                    "PROVIDER_BAD_OUTPUT", f"Gemini's {kind} response was unreadable: {exc}"
                ) from exc
            if attempt < self.max_attempts:
                delay = min(self.backoff_initial_s * 2 ** (attempt - 1), self.backoff_max_s)
                delay = max(delay, min(hint, self.backoff_max_s))
                log.warning(
                    "gemini call failed; retrying",
                    kind=kind,
                    attempt=attempt,
                    delay_s=delay,
                    problem=problem,
                )
                self._sleep(delay)
        raise ProviderError(
            "PROVIDER_UNAVAILABLE",
            f"Gemini {kind} call failed {self.max_attempts} times; last: {problem}",
        ) from failure
