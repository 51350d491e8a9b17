"""A job's options: one typed, frozen object from the request to every stage.

`JobOptions` mirrors the protobuf `reelscribe.v1.JobOptions`. It is made once
from the request (`violations` then `from_pb`), stored in the `jobs.options`
JSONB column (`to_json`), read back by every stage and read RPC
(`from_json`) and returned to clients (`to_pb`). Nothing reads an option by
string key elsewhere.

Stored rows outlive code: `from_json` ignores keys it does not know and gives
missing ones their defaults, so rows written by older (or newer) versions
still load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reelscribe import speech_models, validation
from reelscribe.errors import FieldViolation
from reelscribe.insights import plan
from reelscribe.states import Stage
from reelscribe.v1 import job_pb2

#: What 0 means for each speaker option.
_ZERO = {"speaker_count": "detect", "max_speakers": "8"}
#: Most highlights one job may ask for.
MAX_HIGHLIGHTS = 20
#: Most speakers a job may ask for (or detection may find).
MAX_SPEAKERS = 20
#: Most speakers automatic detection finds when `max_speakers` is 0.
DEFAULT_MAX_SPEAKERS = 8


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How to transcribe a job and what to compute from its transcript."""

    #: BCP-47 language of the speech; empty means detect.
    language: str = ""
    #: Speech model; the server stores its default when the request leaves it empty.
    model: str = ""
    disable_word_timestamps: bool = False
    #: Transcribe again even when an identical transcript is cached.
    skip_cache: bool = False
    #: URL that receives signed webhook POSTs; empty means none.
    callback_uri: str = ""
    #: Also POST stage started/finished events, not only the terminal one.
    callback_stage_events: bool = False
    #: Post-transcription stages asked for by name (sorted, no duplicates).
    extra_stages: tuple[Stage, ...] = ()
    #: Highlights to choose; 0 means the configured default (when highlights run).
    highlight_count: int = 0
    #: BCP-47 language to translate the transcript into; empty means none.
    translate_to: str = ""
    clip_burn_captions: bool = False
    clip_vertical: bool = False
    #: Label who speaks when (STAGE_DIARIZE).
    diarize: bool = False
    #: Speakers in the recording when known (1-20); 0 means detect.
    speaker_count: int = 0
    #: Most speakers detection may find (1-20); 0 means `DEFAULT_MAX_SPEAKERS`.
    max_speakers: int = 0

    # -- from and to the request ----------------------------------------------------

    @staticmethod
    def violations(pb: job_pb2.JobOptions, *, default_model: str) -> list[FieldViolation]:
        """Everything wrong with requested options, field by field.

        Checked on the wire message because a typed `JobOptions` cannot hold
        some of what a client may send (a stage number the server does not
        know). An empty model means `default_model`; a model must be installed
        (`reelscribe.speech_models`) and able to transcribe the language asked for.
        """
        out = validation.language(pb.language, "options.language")
        model_name = pb.model or default_model
        model = speech_models.get(model_name)
        choices = ", ".join(m.name for m in speech_models.installed())
        if model is None or model not in speech_models.installed():
            out.append(
                FieldViolation(
                    "options.model", f"unknown model {model_name[:40]!r}; installed: {choices}"
                )
            )
        elif not out and not model.can_transcribe(pb.language):
            able = [m.name for m in speech_models.installed() if m.can_transcribe(pb.language)]
            out.append(
                FieldViolation(
                    "options.language",
                    f"model {model.name} cannot transcribe {pb.language!r}; "
                    + (f"models that can: {', '.join(able)}" if able else "no installed model can"),
                )
            )
        for value in pb.extra_stages:
            name = job_pb2.Stage.Name(value) if value in job_pb2.Stage.values() else str(value)
            if name.removeprefix("STAGE_") not in plan.ORDER:
                out.append(
                    FieldViolation(
                        "options.extra_stages",
                        f"{name} cannot be requested; choose from "
                        + ", ".join(f"STAGE_{s}" for s in plan.ORDER),
                    )
                )
        if not 0 <= pb.highlight_count <= MAX_HIGHLIGHTS:
            out.append(FieldViolation("options.highlight_count", f"0-{MAX_HIGHLIGHTS}"))
        out += validation.known_language(pb.translate_to, "options.translate_to")
        for name, count in (
            ("speaker_count", pb.speaker_count),
            ("max_speakers", pb.max_speakers),
        ):
            if not 0 <= count <= MAX_SPEAKERS:
                out.append(
                    FieldViolation(f"options.{name}", f"1-{MAX_SPEAKERS}, or 0 for {_ZERO[name]}")
                )
        if 0 < pb.max_speakers < pb.speaker_count <= MAX_SPEAKERS:
            out.append(
                FieldViolation(
                    "options.speaker_count",
                    f"{pb.speaker_count} speakers is more than max_speakers ({pb.max_speakers})",
                )
            )
        return out

    @classmethod
    def from_pb(cls, pb: job_pb2.JobOptions, *, default_model: str = "") -> JobOptions:
        """The options of a request that has no `violations`; an empty model
        becomes `default_model`."""
        return cls(
            language=pb.language,
            model=pb.model or default_model,
            disable_word_timestamps=pb.disable_word_timestamps,
            skip_cache=pb.skip_cache,
            callback_uri=pb.callback_uri,
            callback_stage_events=pb.callback_stage_events,
            extra_stages=tuple(sorted({Stage.from_pb(s) for s in pb.extra_stages})),
            highlight_count=pb.highlight_count,
            translate_to=pb.translate_to,
            clip_burn_captions=pb.clip_burn_captions,
            clip_vertical=pb.clip_vertical,
            diarize=pb.diarize,
            speaker_count=pb.speaker_count,
            max_speakers=pb.max_speakers,
        )

    def to_pb(self) -> job_pb2.JobOptions:
        """The protobuf message returned to clients."""
        return job_pb2.JobOptions(
            language=self.language,
            model=self.model,
            disable_word_timestamps=self.disable_word_timestamps,
            skip_cache=self.skip_cache,
            callback_uri=self.callback_uri,
            callback_stage_events=self.callback_stage_events,
            extra_stages=[s.to_pb() for s in self.extra_stages],
            highlight_count=self.highlight_count,
            translate_to=self.translate_to,
            clip_burn_captions=self.clip_burn_captions,
            clip_vertical=self.clip_vertical,
            diarize=self.diarize,
            speaker_count=self.speaker_count,
            max_speakers=self.max_speakers,
        )

    def for_child(self) -> JobOptions:
        """The options a child job keeps: it never transcribes, so the
        transcription options are blanked."""
        return dataclasses.replace(
            self, language="", model="", disable_word_timestamps=False, skip_cache=False
        )

    # -- the jobs.options column ---------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in `jobs.options`."""
        return {
            "language": self.language,
            "model": self.model,
            "disable_word_timestamps": self.disable_word_timestamps,
            "skip_cache": self.skip_cache,
            "callback_uri": self.callback_uri,
            "callback_stage_events": self.callback_stage_events,
            "extra_stages": [str(s) for s in self.extra_stages],
            "highlight_count": self.highlight_count,
            "translate_to": self.translate_to,
            "clip_burn_captions": self.clip_burn_captions,
            "clip_vertical": self.clip_vertical,
            "diarize": self.diarize,
            "speaker_count": self.speaker_count,
            "max_speakers": self.max_speakers,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> JobOptions:
        """The options stored by `to_json`, by any version.

        Unknown keys are ignored, missing (or null) ones take their defaults,
        and a stage name this version does not know is dropped (it could not
        run here).
        """
        data = data or {}

        def text(key: str) -> str:
            return str(data.get(key) or "")

        def flag(key: str) -> bool:
            return bool(data.get(key) or False)

        known = {s.value for s in Stage}
        return cls(
            language=text("language"),
            model=text("model"),
            disable_word_timestamps=flag("disable_word_timestamps"),
            skip_cache=flag("skip_cache"),
            callback_uri=text("callback_uri"),
            callback_stage_events=flag("callback_stage_events"),
            extra_stages=tuple(
                sorted({Stage(s) for s in data.get("extra_stages") or () if s in known})
            ),
            highlight_count=int(data.get("highlight_count") or 0),
            translate_to=text("translate_to"),
            clip_burn_captions=flag("clip_burn_captions"),
            clip_vertical=flag("clip_vertical"),
            diarize=flag("diarize"),
            speaker_count=int(data.get("speaker_count") or 0),
            max_speakers=int(data.get("max_speakers") or 0),
        )

    # -- what the options ask for ---------------------------------------------------------

    @property
    def speaker_limit(self) -> int:
        """Most speakers automatic detection may find."""
        return self.max_speakers or DEFAULT_MAX_SPEAKERS

    def requested_stages(self) -> list[Stage]:
        """The post-transcription stages these options ask for, with what they
        need, in running order (`highlight_count` asks for HIGHLIGHTS,
        `translate_to` for TRANSLATE, `diarize` or `speaker_count` for DIARIZE)."""
        wanted = set(self.extra_stages)
        if self.diarize or self.speaker_count:
            wanted.add(Stage.DIARIZE)
        if self.highlight_count:
            wanted.add(Stage.HIGHLIGHTS)
        if self.translate_to:
            wanted.add(Stage.TRANSLATE)
        return plan.close(wanted)
