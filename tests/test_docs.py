"""Every example in README.md and docs/*.md runs, against the real test stack.

Each fenced block is classified by its language and by an optional HTML comment
right before it (`<!-- docs-check: ... -->`); a block that fits no class fails
the check, so a new example cannot go untested by accident. docs/development.md
("The docs check") describes the rules for writers.

- `sh`: run with bash in a scratch directory that has `.venv`, `node_modules`,
  a short `lecture.mp4` and a five-minute `long-lecture.wav`; the blocks of one
  page run in order and share the shell variables they assign, like a reader's
  terminal. A block of nothing but `export` lines is a configuration example
  instead: its `REELSCRIBE_*` names must be settings and its values must parse
  (it does not change the page's terminal: it names production hosts).
- `console`: the `$ ` lines run like `sh`; the rest is sample output.
- `python`: run with this interpreter, with the page's exported variables.
- `json`: parsed.
- `skip (reason)`: not run; the reason says what covers it instead.
- `own-server`: the block starts a server of its own, given a free port.
- `stop when "TEXT"`: a service: once it prints TEXT it gets one SIGTERM and
  must exit 0.

Before a block runs, the documented address 127.0.0.1:50051 becomes the test
server's (and 127.0.0.1:8080 its gRPC-Web listener's), `jobs/<id>` and
`media/<id>` a finished job of the docs user (with highlights and rendered
clips) and its media, and `--user alice` that user.

Long on purpose: the docs check is one machine (the block parser and
classifier, the static checks built on them, and the runner that executes every
page in one shared docs world); docs/development.md describes it as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

import click
import grpc
import pytest

from reelscribe.config import Settings
from reelscribe.v1 import job_pb2
from scripts import gen_config_docs
from server.app import ServerApp
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav, speech_samples, write_video
from tests.support.ports import free_port
from tests.support.tokens import JWT_SECRET, token_for

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
DOCUMENTED_ADDRESS = "127.0.0.1:50051"
#: The documented gRPC-Web address (docs/web.md): the test server's listener runs them.
DOCUMENTED_WEB_ADDRESS = "127.0.0.1:8080"
README_MAX_LINES = 200
#: Seconds one block may take (the demo transcribes a short lecture end to end).
BLOCK_TIMEOUT_S = 300.0
#: Seconds a service runs after saying it is ready, before it gets SIGTERM.
SERVICE_SETTLE_S = 1.0

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^<!--\s*docs-check:\s*(?P<body>.*?)\s*-->$")
_SKIP = re.compile(r"^skip\s*\((?P<reason>.+)\)$")
_STOP_WHEN = re.compile(r'^stop when "(?P<text>[^"]+)"$')
_ASSIGNED = re.compile(r"(?:^|[\s;&|(])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
_SHELLS = {"sh", "bash", "shell"}


@dataclass
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int
    lang: str
    text: str
    directive: str = ""
    kind: str = ""
    skip_reason: str = ""
    stop_when: str = ""
    own_server: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of `path`, each with the directive right before it."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group("fence"), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(m.group("indent")) :])
            i += 1
        i += 1
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        directive = ""
        if j >= 0 and (d := _DIRECTIVE.match(lines[j].strip())):
            directive = d.group("body")
        info = m.group("info").strip()
        blocks.append(
            classify(
                Block(
                    path=path,
                    line=start + 1,
                    lang=info.split()[0] if info else "",
                    text="\n".join(body) + "\n",
                    directive=directive,
                )
            )
        )
    return blocks


def classify(block: Block) -> Block:
    """Decide what the check does with `block`; problems make the check fail."""
    if block.directive.startswith("skip"):
        m = _SKIP.match(block.directive)
        block.skip_reason = m.group("reason").strip() if m else ""
        if not block.skip_reason:
            block.problems.append("`skip` needs a reason: skip (why, and what covers it)")
        block.kind = "skip"
        return block
    for part in filter(None, (p.strip() for p in block.directive.split(";"))):
        if m := _STOP_WHEN.match(part):
            block.stop_when = m.group("text")
        elif part == "own-server":
            block.own_server = True
        else:
            block.problems.append(f"unknown docs-check directive {part!r}")
    commands = [
        line
        for line in block.text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if block.lang in _SHELLS:
        config = bool(commands) and all(_is_export(c) for c in commands)
        block.kind = "config" if config and not block.directive else "sh"
    elif block.lang in ("console", "python", "json"):
        block.kind = block.lang
    else:
        block.problems.append(
            f"a {block.lang or 'plain'} block the check cannot run: use sh, console, "
            "python or json, or mark it <!-- docs-check: skip (reason) -->"
        )
    if (block.stop_when or block.own_server) and block.kind != "sh":
        block.problems.append("own-server and stop when apply to sh blocks only")
    if block.stop_when and len(_commands(block)) != 1:
        block.problems.append("a `stop when` block holds exactly one command")
    return block


def _is_export(line: str) -> bool:
    """Whether a shell line only exports literal values (`export A=1 B='x y'`)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return False
    return (
        len(words) > 1
        and words[0] == "export"
        and "$(" not in line
        and all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) for w in words[1:])
    )


def _commands(block: Block) -> list[str]:
    """The shell commands of a block, continuation lines joined."""
    if block.kind == "console":
        lines = [ln[2:] for ln in _console_lines(block.text) if ln.startswith("$ ")]
    else:
        lines = block.text.splitlines()
    out: list[str] = []
    pending = ""
    for line in lines:
        if not pending and (not line.strip() or line.strip().startswith("#")):
            continue
        pending += line
        if line.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        out.append(pending)
        pending = ""
    return out


def _console_lines(text: str) -> list[str]:
    """Lines of a console block, a command's continuation lines joined to it."""
    out: list[str] = []
    for line in text.splitlines():
        if out and out[-1].startswith("$ ") and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1] + " " + line.strip()
        else:
            out.append(line)
    return out


def all_blocks() -> list[Block]:
    """Every block of every page."""
    return [b for page in PAGES for b in parse_blocks(page)]


# -- checks that need no stack ---------------------------------------------------------


def test_every_block_is_runnable_or_skipped_with_a_reason() -> None:
    problems = [f"{b.where}: {p}" for b in all_blocks() for p in b.problems]
    assert not problems, "\n".join(problems)


def test_json_examples_parse() -> None:
    for block in all_blocks():
        if block.kind == "json":
            try:
                json.loads(block.text)
            except json.JSONDecodeError as exc:
                pytest.fail(f"{block.where}: not JSON: {exc}")


def _setting_env_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {
        n
        for name, info in Settings.model_fields.items()
        for n in gen_config_docs.env_names(name, info, prefix)
    }


@pytest.mark.parametrize(
    "block",
    [b for b in all_blocks() if b.kind == "config"],
    ids=lambda b: b.where,
)
def test_configuration_examples_name_settings_and_parse(
    block: Block, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{block.text}\nenv -0"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, f"{block.where}: {done.stderr}"
    exported = dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
    known = _setting_env_names()
    ours = {k: v for k, v in exported.items() if k.startswith("REELSCRIBE_") or k in known}
    unknown = sorted(set(ours) - known)
    assert not unknown, f"{block.where}: not settings: {unknown}"
    for name in list(os.environ):
        if name.startswith("REELSCRIBE_") or name in known:
            monkeypatch.delenv(name)
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    Settings()  # raises on a value that does not parse


def test_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == gen_config_docs.render(), (
        "docs/configuration.md is stale: run `make gen`"
    )


def _cli_group() -> click.Group:
    """The `reelscribe` command group, found the way the installed script finds it."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["reelscribe"].partition(":")
    group = getattr(import_module(module), attr)
    assert isinstance(group, click.Group)
    return group


def test_cli_reference_shows_every_command() -> None:
    page = ROOT / "docs" / "cli.md"
    text = page.read_text()
    examples = [b.text for b in parse_blocks(page) if b.kind != "json"]
    missing = []
    for name in sorted(_cli_group().commands):
        if f"### `reelscribe {name}`" not in text:
            missing.append(f"no `### `reelscribe {name}`` heading")
        used = re.compile(rf"(^|[\s/]){re.escape('reelscribe')} {re.escape(name)}(\s|$)", re.M)
        if not any(used.search(example) for example in examples):
            missing.append(f"no example of `reelscribe {name}`")
    assert not missing, "docs/cli.md: " + "; ".join(missing)


def test_readme_lists_every_command() -> None:
    text = (ROOT / "README.md").read_text()
    missing = [
        name
        for name in sorted(_cli_group().commands)
        if not re.search(rf"(^|[\s|])reelscribe {re.escape(name)}(\s|$)", text, re.M)
        and not re.search(rf"^reelscribe [^#]*\| {re.escape(name)}(\s|$)", text, re.M)
    ]
    assert not missing, f"README.md does not list {missing}"


def test_api_reference_names_every_rpc() -> None:
    from reelscribe.v1 import job_service_pb2, search_service_pb2, transcript_service_pb2

    text = (ROOT / "docs" / "api.md").read_text()
    missing = [
        f"{service.name}.{method.name}"
        for module in (job_service_pb2, transcript_service_pb2, search_service_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if f"{service.name}.{method.name}" not in text and f"`{method.name}`" not in text
    ]
    assert not missing, f"docs/api.md does not describe {missing}"


def _anchors(path: Path) -> set[str]:
    anchors = set()
    in_code = False
    for line in path.read_text().splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_relative_links_resolve() -> None:
    broken = []
    link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in link.findall(text):
            if re.match(r"^[a-z]+://", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


_REPO_PATH = re.compile(
    r"^(?:reelscribe|server|workers|cli|clients|protos|tests|scripts|bench|deploy|docs)/[\w./-]*$"
)


def test_paths_named_in_the_docs_exist() -> None:
    named: dict[str, set[str]] = {}
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for token in re.findall(r"`([^`\n]+)`", text):
            if _REPO_PATH.match(token):
                named.setdefault(token, set()).add(str(page.relative_to(ROOT)))
    missing = [
        f"{path} (named in {', '.join(sorted(pages))})"
        for path, pages in sorted(named.items())
        if not (ROOT / path).exists()
    ]
    assert not missing, "the docs name paths that do not exist: " + "; ".join(missing)


def test_symbols_named_in_the_docs_exist() -> None:
    """ "`name` in `path.py`" (README's reading order, for one) names a real definition."""
    mention = re.compile(r"`(?:\w+\.)*(?P<name>\w+)(?:\(\))?`\s+in\s+`(?P<path>[\w/]+\.py)`")
    wrong = []
    for page in PAGES:
        for m in mention.finditer(page.read_text()):
            path, name = m.group("path"), m.group("name")
            source = (ROOT / path).read_text() if (ROOT / path).exists() else ""
            if not re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{name}\b", source, re.M):
                wrong.append(f"{page.relative_to(ROOT)}: no `{name}` in {path}")
    assert not wrong, "\n".join(wrong)


def test_readme_stays_short() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


# -- the examples, run against the test stack ------------------------------------------


@dataclass
class DocsWorld:
    """What the examples run against: a scratch directory, an environment, a job."""

    workdir: Path
    env: dict[str, str]
    user: str
    job: str
    media: str
    server_address: str
    web_address: str

    def substitute(self, text: str) -> str:
        """The example as it runs here: real address, job, media and user."""
        return (
            text.replace(DOCUMENTED_ADDRESS, self.server_address)
            .replace(DOCUMENTED_WEB_ADDRESS, self.web_address)
            .replace("jobs/<id>", self.job)
            .replace("media/<id>", self.media)
            .replace("--user alice", f"--user {self.user}")
        )


@pytest.fixture(scope="module")
async def docs_world(
    server: ServerApp,
    settings: Settings,
    channel: grpc.aio.Channel,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DocsWorld]:
    workdir = tmp_path_factory.mktemp("docs-examples")
    (workdir / ".venv").symlink_to(Path(sys.prefix))
    (workdir / "node_modules").symlink_to(ROOT / "node_modules")
    lecture = workdir / "lecture.mp4"
    await asyncio.to_thread(write_video, lecture, 6.0, speech_samples(MEDIA_DIR / "ocean.ogg"))
    # Long enough to be still running when an example cancels it (about 5 minutes).
    await asyncio.to_thread(lecture_wav, workdir / "long-lecture.wav", 14)
    user = f"docs-{uuid.uuid4().hex[:8]}"
    api = Api(channel, token_for(user))
    job = await api.run(lecture, extra_stages=[job_pb2.STAGE_RENDER_CLIPS], highlight_count=2)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCRIBE_")}
    env.pop("GEMINI_API_KEY", None)
    env.update(
        {
            "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "HF_HUB_OFFLINE": "1",
            "REELSCRIBE_DATABASE_URL": settings.database_url,
            "REELSCRIBE_REDIS_URL": settings.redis_url,
            "REELSCRIBE_DATA_DIR": str(settings.data_dir),
            "REELSCRIBE_JWT_SECRET": JWT_SECRET,
            # Workers the examples start (up, demo, worker) keep to a queue of
            # their own, so a SIGTERM there never strands a job of another test.
            "REELSCRIBE_QUEUE_NAME": f"{settings.queue_name}-docs",
            "REELSCRIBE_SERVER_ADDRESS": f"127.0.0.1:{server.port}",
            # Servers the examples start listen elsewhere (see own-server).
            "REELSCRIBE_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
            # ...and their gRPC-Web listeners too (never `up`'s 127.0.0.1:8080).
            "REELSCRIBE_WEB_LISTEN": f"127.0.0.1:{free_port()}",
            "REELSCRIBE_METRICS_PORT": "0",
            "REELSCRIBE_WORKER_METRICS_PORT": "0",
            "REELSCRIBE_WORKER_PROCESSES": "1",
            "REELSCRIBE_SHUTDOWN_GRACE_S": "5",
            "REELSCRIBE_WORKER_SHUTDOWN_TIMEOUT_S": "5",
        }
    )
    yield DocsWorld(
        workdir=workdir,
        env=env,
        user=user,
        job=job.name,
        media=job.media,
        server_address=f"127.0.0.1:{server.port}",
        web_address=server.web_address,
    )


@dataclass
class Ran:
    """What one block did."""

    block: Block
    code: int
    output: str

    def report(self) -> str:
        return (
            f"{self.block.where} exited {self.code}:\n{self.block.text}"
            f"\n--- output ---\n{self.output[-4000:]}"
        )


class PageTerminal:
    """One page's blocks, run in order in what acts as one terminal."""

    def __init__(self, world: DocsWorld, page: Path) -> None:
        self.world = world
        self.state = world.workdir / f"{page.stem}.state.sh"
        self.state.write_text("")

    def _script(self, block: Block, body: str) -> str:
        names = sorted(set(_ASSIGNED.findall(body)))
        # Appended: a later declaration of a name wins when the file is sourced.
        keep = f"declare -p {' '.join(names)} >> {shlex.quote(str(self.state))} 2>/dev/null || true"
        return "\n".join(
            [
                "set -euo pipefail",
                f"cd {shlex.quote(str(self.world.workdir))}",
                f"source {shlex.quote(str(self.state))}",
                body,
                keep if names else "",
            ]
        )

    def _env(self, block: Block) -> dict[str, str]:
        env = dict(self.world.env)
        if block.own_server:
            address = f"127.0.0.1:{free_port()}"
            env["REELSCRIBE_LISTEN_ADDRESS"] = address
            env["REELSCRIBE_SERVER_ADDRESS"] = address
            env["REELSCRIBE_WEB_LISTEN"] = f"127.0.0.1:{free_port()}"
        return env

    async def run(self, block: Block) -> Ran:
        if block.kind == "python":
            source = self.world.workdir / f"example_{block.path.stem}_{block.line}.py"
            source.write_text(self.world.substitute(block.text))
            body = f"{shlex.quote(sys.executable)} {shlex.quote(str(source))}"
        else:
            body = "\n".join(self.world.substitute(c) for c in _commands(block))
        if block.stop_when:
            return await self._run_service(block, body)
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            self._script(block, body),
            env=self._env(block),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), BLOCK_TIMEOUT_S)
        except TimeoutError:
            _kill_group(proc.pid)
            out, _ = await proc.communicate()
            return Ran(block, -1, out.decode(errors="replace") + "\n(timed out)")
        return Ran(block, proc.returncode or 0, out.decode(errors="replace"))

    async def _run_service(self, block: Block, body: str) -> Ran:
        # exec: the documented command itself gets the one SIGTERM.
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            self._script(block, "exec " + body),
            env=self._env(block),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(BLOCK_TIMEOUT_S):
                while not any(block.stop_when in line for line in seen):
                    line = await proc.stdout.readline()
                    if not line:
                        break
                    seen.append(line.decode(errors="replace"))
        except TimeoutError:
            seen.append("(timed out waiting for the ready text)\n")
        ready = any(block.stop_when in line for line in seen)
        if ready:
            # As a person would: not in the same instant the service says it is up.
            await asyncio.sleep(SERVICE_SETTLE_S)
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = await asyncio.wait_for(proc.communicate(), 60)
            seen.append(rest.decode(errors="replace"))
        except TimeoutError:
            seen.append("(still running 60 s after SIGTERM)\n")
        _kill_group(proc.pid)
        code = proc.returncode if proc.returncode is not None else -1
        if not ready:
            seen.append(f'(never printed "{block.stop_when}")\n')
            code = code or -2
        return Ran(block, code, "".join(seen))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _pages_with_examples() -> Iterator[Path]:
    for page in PAGES:
        if any(b.kind in ("sh", "console", "python") for b in parse_blocks(page)):
            yield page


@pytest.mark.stack
@pytest.mark.parametrize(
    "page", list(_pages_with_examples()), ids=lambda p: str(p.relative_to(ROOT))
)
async def test_examples_run(page: Path, docs_world: DocsWorld) -> None:
    terminal = PageTerminal(docs_world, page)
    for block in parse_blocks(page):
        if block.kind not in ("sh", "console", "python"):
            continue
        ran = await terminal.run(block)
        print(f"--- {block.where} ({block.kind}) exited {ran.code}\n{ran.output}")  # for -s
        assert ran.code == 0, ran.report()
        if block.kind == "console":
            shows_output = any(
                ln.strip() and not ln.startswith("$ ") for ln in _console_lines(block.text)
            )
            assert not shows_output or ran.output.strip(), (
                f"{block.where}: the example shows output but the commands printed nothing"
            )
