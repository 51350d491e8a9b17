"""ListModels: the speech models this server can run, for clients choosing one
before they upload.

"Installed" means the model's packages are on this server's host
(`reelscribe.speech_models.installed`); workers refuse to start unless every
installed model's files are intact (`workers.boot`), so a model listed here
is one a job can use.
"""

from __future__ import annotations

from reelscribe import speech_models
from reelscribe.config import Settings
from reelscribe.v1 import job_service_pb2


def list_models(settings: Settings) -> job_service_pb2.ListModelsResponse:
    """Every installed model, the server's default (`whisper_model_name`) marked."""
    return job_service_pb2.ListModelsResponse(
        models=[
            job_service_pb2.SpeechModel(
                name=m.name,
                description=m.description,
                languages=list(m.languages),
                multilingual=m.multilingual,
                relative_time=m.relative_time,
                default_model=m.name == settings.whisper_model_name,
            )
            for m in speech_models.installed()
        ]
    )
