"""A local fake of the Gemini REST API, for tests.

A real HTTP server (stdlib `ThreadingHTTPServer` on a loopback port) that
speaks the wire protocol `google-genai` uses for `models.generate_content`:

    POST /{version}/models/{model}:generateContent      (any v1, v1beta, ...)
    x-goog-api-key: <key>
    {"contents": [...], "systemInstruction": {...}, "generationConfig": {...}}

and answers like Google does:

    {"candidates": [{"content": {"parts": [{"text": "..."}], "role": "model"},
                     "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": .., "candidatesTokenCount": ..,
                       "totalTokenCount": ..},
     "modelVersion": "<model>", "responseId": "fake-<n>"}

Errors use Google's body, ``{"error": {"code", "message", "status"}}``. A
missing or wrong key gets 400 INVALID_ARGUMENT ("API key not valid"), as from
Google; any other path gets 404.

Use::

    from tests.support.gemini_fake import GeminiFake, Hang, Reply, Status

    with GeminiFake(api_key="test-key") as fake:          # or fake.start()/stop()
        provider = GeminiProvider(api_key="test-key", base_url=fake.base_url)
        fake.script([Status(429), Reply({"answer": "x", "cited": [0]})])
        provider.answer("why?", passages)                 # 429, then the scripted reply
        fake.requests[-1].headers["x-goog-api-key"]      # what was received

Behaviours (consumed first-in first-out, one per generateContent request that
passes the key check):

* `Reply(text_or_obj, prompt_tokens=, output_tokens=, finish_reason=,
  thoughts_tokens=)`: a 200
  with that candidate text (dicts and lists are JSON-encoded).
* `Status(code, message=, headers=, details=)`: an error status with Google's
  error body (e.g. `Status(429)`, `Status(503, headers={"Retry-After": "1"})`).
* `Hang(seconds, then=None)`: say nothing for `seconds`, then act as `then`
  (the default reply when None). Clients with a shorter timeout give up first.
* `Drop()`: close the connection without answering.
* `Raw(status, body, content_type=)`: any bytes, e.g. a 200 that is not JSON.
* `Blocked(reason)`: no candidates, ``promptFeedback.blockReason`` set.
* `Default()`: the computed default reply, explicitly.
* `Custom(fn)`: `fn(request) -> behaviour`, decided when the request arrives.

When the script is empty, `fake.default(request)` decides; it starts as
`default_behaviour`, a VALID reply computed from the request, so full-stack
tests need no scripting. Assign `fake.default = lambda req: Status(503)` to
make the API stay down.

The default reply reads the request kind from the prompt's ``Task: <kind>``
line, falling back to the response schema's title, and the transcript from
the prompt's ``[index] start-end text`` lines (see reelscribe.insights.gemini_replies):

* ``analysis``: short_summary, bullets, detailed_summary, chapters (up to three,
  contiguous, within the line times) and topics, from the lines' words.
* ``importance``: one rating per line; longer lines score higher.
* ``answer``: the passage sharing most words with the ``Question:`` line,
  quoted and cited by its index (nothing cited if no word is shared).
* ``translation``: ``"[<lang>] <text>"`` per line, for ``Target language:``.

Every request is recorded (`fake.requests`, a list of `RecordedRequest`) with
its headers (lower-case names), raw body, parsed JSON, and helpers for the
prompt, generation config, schema, kind and transcript lines.

Long on purpose: it fakes one wire protocol completely (the server, the
behaviours tests script and a valid default reply for each request kind), and
tests import it as one module; the behaviours and replies are documented above.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# --- Behaviours.


@dataclass(frozen=True)
class Reply:
    """A 200 whose single candidate says `text` (dicts and lists become JSON)."""

    text: str | dict[str, Any] | list[Any]
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str = "STOP"
    #: Sent as ``usageMetadata.thoughtsTokenCount`` when set.
    thoughts_tokens: int | None = None


@dataclass(frozen=True)
class Status:
    """An HTTP error with Google's error body."""

    code: int
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Hang:
    """Stay silent for `seconds`, then act as `then` (the default reply if None)."""

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending a response."""


@dataclass(frozen=True)
class Raw:
    """Send `body` as is with `status`."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"


@dataclass(frozen=True)
class Blocked:
    """A 200 with no candidates: the prompt was blocked for `reason`."""

    reason: str = "SAFETY"


@dataclass(frozen=True)
class Default:
    """The reply `default_behaviour` computes for the request."""


@dataclass(frozen=True)
class Custom:
    """Decide when the request arrives: `fn(request)` returns the behaviour."""

    fn: Callable[[RecordedRequest], Behaviour]


Behaviour = Reply | Status | Hang | Drop | Raw | Blocked | Default | Custom

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# --- Recorded requests.

_PATH = re.compile(
    r"^/(?P<version>v\d+(?:alpha|beta)?\d*)/models/(?P<model>[^/:]+):generateContent$"
)
_LINE = re.compile(r"^\[(\d+)\]\s+(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s?(.*)$")
_TASK = re.compile(r"^Task:\s*(\w+)", re.MULTILINE)
_KINDS = ("importance", "translation", "answer", "analysis")


@dataclass(frozen=True)
class Line:
    """One ``[index] start-end text`` line of a prompt."""

    index: int
    start_s: float
    end_s: float
    text: str


@dataclass
class RecordedRequest:
    """One HTTP request the fake received, and the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    status: int | None = None

    @property
    def api_version(self) -> str | None:
        """``v1``, ``v1beta``, ... for generateContent paths."""
        match = _PATH.match(urlsplit(self.path).path)
        return match["version"] if match else None

    @property
    def model(self) -> str | None:
        """The model named in the path, e.g. ``gemini-2.5-flash``."""
        match = _PATH.match(urlsplit(self.path).path)
        return match["model"] if match else None

    @property
    def api_key(self) -> str | None:
        """The ``x-goog-api-key`` header (or ``?key=``), if any."""
        key = self.headers.get("x-goog-api-key")
        if key is None:
            key = parse_qs(urlsplit(self.path).query).get("key", [None])[0]
        return key

    @property
    def prompt(self) -> str:
        """All text parts of the request's contents, joined by newlines."""
        contents = (self.json or {}).get("contents") or []
        return "\n".join(_texts(contents))

    @property
    def system_instruction(self) -> str:
        """The system instruction's text ("" if none)."""
        system = (self.json or {}).get("systemInstruction") or {}
        return "\n".join(_texts([system]))

    @property
    def generation_config(self) -> dict[str, Any]:
        """``generationConfig`` as sent (camelCase keys)."""
        return dict((self.json or {}).get("generationConfig") or {})

    @property
    def response_schema(self) -> dict[str, Any] | None:
        """``responseSchema`` or ``responseJsonSchema``, whichever was sent."""
        config = self.generation_config
        return config.get("responseSchema") or config.get("responseJsonSchema")

    @property
    def kind(self) -> str:
        """analysis, importance, answer, translation or unknown."""
        task = _TASK.search(self.prompt)
        if task and task[1].lower() in _KINDS:
            return task[1].lower()
        title = str((self.response_schema or {}).get("title", "")).lower()
        return next((kind for kind in _KINDS if kind in title), "unknown")

    @property
    def lines(self) -> list[Line]:
        """The prompt's ``[index] start-end text`` lines."""
        out = []
        for raw in self.prompt.splitlines():
            match = _LINE.match(raw.strip())
            if match:
                out.append(Line(int(match[1]), float(match[2]), float(match[3]), match[4]))
        return out

    def field(self, name: str) -> str | None:
        """The rest of the prompt line starting ``<name>:``, e.g. ``Question``."""
        match = re.search(rf"^{re.escape(name)}:\s*(.*)$", self.prompt, re.MULTILINE)
        return match[1].strip() if match else None


def _texts(contents: Iterable[Any]) -> list[str]:
    out = []
    for content in contents:
        for part in (content or {}).get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
    return out


# --- The default, valid reply.

_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """a an and are as at be but by for from has have he her his i in is it its of on or
        our she so that the their them then there these they this to was we were what when
        which who will with you your not just about into than also been can could would
        should do does did going get got very really yeah okay""",
    )
)


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]{3,}", text.lower())


def _keywords(texts: Iterable[str], count: int) -> list[str]:
    counts = Counter(w for t in texts for w in _words(t) if w not in _STOPWORDS and len(w) >= 4)
    return [word for word, _ in counts.most_common(count)]


def _first_sentence(text: str, limit: int = 160) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return sentence[:limit].strip()


def _analysis(lines: list[Line]) -> dict[str, Any]:
    texts = [line.text for line in lines]
    keywords = _keywords(texts, 5)
    about = ", ".join(keywords[:3]) or "its subject"
    n = len(lines)
    step = max(1, n // 5)
    bullets = [_first_sentence(lines[i].text) for i in range(0, n, step)][:5]
    bullets = [b for b in bullets if b] or [f"The recording covers {about}."]
    chapters: list[dict[str, Any]] = []
    groups = min(3, n)
    bounds = [round(i * n / groups) for i in range(groups + 1)] if groups else []
    for g in range(groups):
        group = lines[bounds[g] : bounds[g + 1]]
        start = group[0].start_s
        end = lines[bounds[g + 1]].start_s if bounds[g + 1] < n else max(x.end_s for x in lines)
        if end <= start:
            continue
        topic = (_keywords([x.text for x in group], 1) or ["discussion"])[0]
        chapters.append(
            {"title": f"Part {len(chapters) + 1}: {topic}", "start_s": start, "end_s": end}
        )
    return {
        "short_summary": f"A recording of {n} segments about {about}.",
        "bullets": bullets,
        "detailed_summary": " ".join(texts) or f"A recording about {about}.",
        "chapters": chapters,
        "topics": keywords or ["general"],
    }


def _importance(lines: list[Line]) -> dict[str, Any]:
    most = max((len(_words(line.text)) for line in lines), default=1) or 1
    ratings = []
    for line in lines:
        words = _words(line.text)
        keyword = max(words, key=len) if words else ""
        ratings.append(
            {
                "index": line.index,
                "score": round(min(1.0, 0.1 + 0.9 * len(words) / most), 3),
                "reason": f"mentions {keyword}" if keyword else "no content",
            }
        )
    return {"ratings": ratings}


def _answer(lines: list[Line], question: str) -> dict[str, Any]:
    asked = {w for w in _words(question) if w not in _STOPWORDS}
    scored = sorted(
        ((len(asked & set(_words(line.text))), -pos, line) for pos, line in enumerate(lines)),
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    best = [line for overlap, _, line in scored[:2] if overlap > 0]
    if not best:
        return {"answer": "The passages do not answer this question.", "cited": []}
    return {
        "answer": "From the transcript: " + " ".join(line.text for line in best),
        "cited": [line.index for line in best],
    }


def _translation(lines: list[Line], language: str) -> dict[str, Any]:
    return {"lines": [{"index": line.index, "text": f"[{language}] {line.text}"} for line in lines]}


def default_payload(request: RecordedRequest) -> dict[str, Any]:
    """The JSON object the default reply carries for `request` (see module doc)."""
    lines = request.lines
    kind = request.kind
    if kind == "analysis":
        return _analysis(lines)
    if kind == "importance":
        return _importance(lines)
    if kind == "answer":
        return _answer(lines, request.field("Question") or "")
    if kind == "translation":
        return _translation(lines, request.field("Target language") or "xx")
    return {}


def default_behaviour(request: RecordedRequest) -> Behaviour:
    """A valid reply computed from the request."""
    return Reply(default_payload(request))


# --- The server.


class GeminiFake:
    """A scriptable Gemini API on ``127.0.0.1``; see the module doc."""

    def __init__(self, api_key: str | None = "test-key", host: str = "127.0.0.1") -> None:
        """`api_key` None accepts any key (or none)."""
        self.api_key = api_key
        self.host = host
        self.default: Callable[[RecordedRequest], Behaviour] = default_behaviour
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._served = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle.

    def start(self) -> GeminiFake:
        """Listen on a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer((self.host, 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="gemini-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are released and their connections closed."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GeminiFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the Gemini fake is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as the provider's base_url, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    # Scripting and inspection.

    def script(self, behaviours: Iterable[Behaviour]) -> None:
        """Queue behaviours for the next generateContent requests, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and unused scripted behaviours."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` requests arrived; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.requests
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the Gemini fake saw {len(got)} requests, not {count}")
            time.sleep(0.01)

    # Used by the handler.

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self._served += 1
            if self._queue:
                return self._queue.popleft()
        return self.default(request)

    def _response_id(self) -> str:
        with self._lock:
            return f"fake-{self._served}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GeminiFake/1"

    @property
    def fake(self) -> GeminiFake:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            json=parsed,
        )
        self.fake._record(request)
        try:
            if self.command != "POST" or request.model is None:
                self._error(request, 404, f"{self.command} {urlsplit(self.path).path} not found")
            elif self.fake.api_key is not None and request.api_key != self.fake.api_key:
                self._error(
                    request,
                    400,
                    "API key not valid. Please pass a valid API key.",
                    details=[
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                )
            elif not isinstance(parsed, dict) or not parsed.get("contents"):
                self._error(
                    request, 400, "* GenerateContentRequest.contents: contents is not specified"
                )
            else:
                self._act(request, self.fake._next(request))
        except OSError:
            # The client went away (it timed out or closed the connection).
            self.close_connection = True

    def _act(self, request: RecordedRequest, behaviour: Behaviour) -> None:
        if isinstance(behaviour, Custom):
            behaviour = behaviour.fn(request)
        if isinstance(behaviour, Default):
            behaviour = default_behaviour(request)
        if isinstance(behaviour, Hang):
            if self.fake._stopping.wait(behaviour.seconds):
                self.close_connection = True
                return
            self._act(request, behaviour.then or self.fake.default(request))
        elif isinstance(behaviour, Reply):
            self._reply(request, behaviour)
        elif isinstance(behaviour, Status):
            self._error(
                request, behaviour.code, behaviour.message, behaviour.headers, behaviour.details
            )
        elif isinstance(behaviour, Drop):
            request.status = 0
            self.close_connection = True
        elif isinstance(behaviour, Raw):
            body = behaviour.body.encode() if isinstance(behaviour.body, str) else behaviour.body
            self._send(request, behaviour.status, body, behaviour.content_type)
        elif isinstance(behaviour, Blocked):
            self._send_json(
                request,
                200,
                {
                    "promptFeedback": {"blockReason": behaviour.reason},
                    "usageMetadata": {
                        "promptTokenCount": _tokens(request.prompt),
                        "totalTokenCount": _tokens(request.prompt),
                    },
                    "modelVersion": request.model,
                    "responseId": self.fake._response_id(),
                },
            )
        else:  # pragma: no cover - a typo in a test script
            raise TypeError(f"not a Gemini fake behaviour: {behaviour!r}")

    def _reply(self, request: RecordedRequest, reply: Reply) -> None:
        text = reply.text if isinstance(reply.text, str) else json.dumps(reply.text)
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = _tokens(request.system_instruction + request.prompt)
        output_tokens = reply.output_tokens if reply.output_tokens is not None else _tokens(text)
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens + (reply.thoughts_tokens or 0),
        }
        if reply.thoughts_tokens is not None:
            usage["thoughtsTokenCount"] = reply.thoughts_tokens
        self._send_json(
            request,
            200,
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": reply.finish_reason,
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                "modelVersion": request.model,
                "responseId": self.fake._response_id(),
            },
        )

    def _error(
        self,
        request: RecordedRequest,
        code: int,
        message: str = "",
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        status = _STATUS_NAMES.get(code, "UNKNOWN")
        error: dict[str, Any] = {
            "code": code,
            "message": message or f"fake {status}",
            "status": status,
        }
        if details:
            error["details"] = details
        self._send_json(request, code, {"error": error}, headers)

    def _send_json(
        self,
        request: RecordedRequest,
        code: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send(
            request, code, json.dumps(payload).encode(), "application/json; charset=UTF-8", headers
        )

    def _send(
        self,
        request: RecordedRequest,
        code: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        request.status = code
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def _tokens(text: str) -> int:
    """A rough token count: four characters a token, at least one."""
    return max(1, len(text) // 4)
