"""Speech models as a choice: `ListModels` (gRPC, grpcurl, the Python client and
the CLI), the per-job `model` option through the real pipeline, the CLI's check
before it uploads, and workers that refuse to start on a damaged model."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import grpc
import numpy as np
import pytest
from reelscribe_client import ReelscribeClient

from cli.stack import supervised, worker_command
from reelscribe import embeddings, search_model, speech_models
from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.processes import CLI, client_env, worker_env
from tests.support.search_model import damaged_search_copy
from tests.support.tokens import token_for
from workers.supervisor import EX_CONFIG


async def test_list_models_says_what_each_installed_model_can_do(
    api: Api, settings: Settings
) -> None:
    reply = await api.jobs.ListModels(
        job_service_pb2.ListModelsRequest(), metadata=api.metadata, timeout=30
    )
    models = {m.name: m for m in reply.models}
    assert set(models) == {m.name for m in speech_models.installed()} == {"tiny.en", "base"}
    # The test stack's default is tiny.en (tests/support/settings.py); exactly one default.
    assert [m.name for m in reply.models if m.default_model] == [settings.whisper_model_name]
    tiny, base = models["tiny.en"], models["base"]
    assert list(tiny.languages) == ["en"] and not tiny.multilingual
    assert base.multilingual and {"en", "de", "fr", "zh", "yue"} <= set(base.languages)
    for m in reply.models:
        assert m.relative_time == speech_models.REGISTRY[m.name].relative_time
        assert m.description

    # Like every RPC, it needs a token.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.jobs.ListModels(job_service_pb2.ListModelsRequest(), timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_list_models_through_grpcurl_and_the_python_client(
    server: ServerApp, user: str
) -> None:
    from tests.test_grpcurl import _ok

    out = await _ok(server, "reelscribe.v1.JobService/ListModels", data="{}", token=token_for(user))
    listed = {m["name"]: m for m in json.loads(out)["models"]}
    assert listed["tiny.en"].get("defaultModel") is True
    assert listed["base"]["multilingual"] is True and "de" in listed["base"]["languages"]

    async with ReelscribeClient(f"127.0.0.1:{server.port}", token_for(user)) as client:
        models = await client.list_models()
    assert {m.name for m in models} == set(listed)


async def test_a_job_uses_the_model_it_asks_for_and_caches_per_model(
    api: Api, settings: Settings
) -> None:
    media = (await api.upload(MEDIA_DIR / "volcano.ogg")).name
    default = await api.run(media)
    assert default.state == job_pb2.JOB_STATE_SUCCEEDED, default.error
    assert (await api.transcript(default.name)).model == settings.whisper_model_name == "tiny.en"

    # Same media, another model: transcribed again (never tiny.en's cached
    # transcript), by base, and it heard the words.
    base = await api.run(media, model="base", language="en")
    assert base.state == job_pb2.JOB_STATE_SUCCEEDED, base.error
    assert not base.cache_hit
    transcript = await api.transcript(base.name)
    assert transcript.model == "base"
    heard = transcript.text.lower()
    assert "volcano" in heard and "ash" in heard, heard

    # The cache itself works: the default model again on the same media is a hit.
    again = await api.run(media)
    assert again.cache_hit and (await api.transcript(again.name)).model == "tiny.en"


async def _cli(server: ServerApp, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [*CLI, *args],
        env=client_env(server.port, token_for(user)),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_lists_models_and_checks_the_choice_before_uploading(
    server: ServerApp, api: Api, user: str
) -> None:
    listed = await _cli(server, user, "models")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "English only" in rows["tiny.en"] and "default" in rows["tiny.en"]
    base = speech_models.REGISTRY["base"]
    assert f"{len(base.languages)} languages" in rows["base"] and "default" not in rows["base"]
    assert f"{base.relative_time:.1f}x tiny.en's time" in rows["base"]

    volcano = str(MEDIA_DIR / "volcano.ogg")
    unknown = await _cli(server, user, "submit", volcano, "--model", "huge")
    assert unknown.returncode == 2, unknown.stderr
    assert "'huge' is not installed" in unknown.stderr and "tiny.en, base" in unknown.stderr
    german = await _cli(server, user, "submit", volcano, "--language", "de")
    assert german.returncode == 2, german.stderr
    assert "tiny.en (the server's default) cannot transcribe 'de'" in german.stderr
    assert "models that can: base" in german.stderr
    cantonese = await _cli(
        server, user, "submit", volcano, "--model", "tiny.en", "--language", "yue"
    )
    assert cantonese.returncode == 2 and "models that can: base" in cantonese.stderr

    # Nothing was uploaded by the refused submissions.
    usage = await api.jobs.GetUsage(
        job_service_pb2.GetUsageRequest(), metadata=api.metadata, timeout=30
    )
    assert usage.stored_bytes == 0


def _damaged_cache(cache_dir: Path) -> Path:
    """A model cache holding base, joined and then damaged in place."""
    base = speech_models.REGISTRY["base"]
    model_bin = speech_models.model_dir(base, cache_dir) / "model.bin"
    with model_bin.open("r+b") as f:
        f.seek(4096)
        f.write(b"bit rot")
    return model_bin


def test_a_worker_refuses_to_start_on_a_damaged_model_and_is_not_restarted(
    settings: Settings, tmp_path: Path
) -> None:
    model_bin = _damaged_cache(tmp_path)
    search_copy = damaged_search_copy(tmp_path)
    env = {**worker_env(settings), "REELSCRIBE_MODEL_CACHE_DIR": str(tmp_path)}
    # As `reelscribe worker` runs it: under the supervisor, which must not restart it.
    done = subprocess.run(
        supervised(worker_command(1, 1)), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == EX_CONFIG, done.stderr[-2000:]
    assert "reelscribe worker refuses to start" in done.stderr
    assert str(model_bin) in done.stderr and "SHA-256" in done.stderr
    assert "reelscribe models --install" in done.stderr

    # `reelscribe doctor` says the same, and `reelscribe models --install` repairs it.
    doctor = subprocess.run(
        [*CLI, "doctor", "--no-services"], env=env, capture_output=True, text=True, timeout=120
    )
    assert doctor.returncode == 1 and str(model_bin) in doctor.stdout + doctor.stderr
    repaired = subprocess.run(
        [*CLI, "models", "--install"], env=env, capture_output=True, text=True, timeout=120
    )
    assert repaired.returncode == 0, repaired.stderr
    assert str(model_bin.parent) in repaired.stdout and "SHA-256 verified" in repaired.stdout
    speech_models.verify(speech_models.REGISTRY["base"], tmp_path)
    # The search model's damaged ONNX copy was exported again, and embeds as the
    # installed one does.
    assert str(search_copy) in repaired.stdout
    model_dir = Path(embeddings.default_model_dir())
    assert search_model.problem(model_dir, tmp_path) == ""
    assert (search_copy / search_model.WEIGHTS).stat().st_mode & 0o777 == 0o644
    texts = ["The tide comes in twice a day.", "Waves break on the shore."]
    repaired_vectors = embeddings.get_embedder(
        settings.model_copy(update={"model_cache_dir": tmp_path})
    ).embed(texts)
    assert np.allclose(repaired_vectors, embeddings.get_embedder(settings).embed(texts), atol=1e-6)
