"""Decoding one chunk run by run: each run of speech in one language is decoded
with that language fixed, and the segments carry their language.

The language identification itself is `workers.languages`; this module puts
it to work on a chunk (`workers.stages` calls it) and, for English-only
models, flags the segments probably spoken in another language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import structlog

from reelscribe import cantonese, speech, speech_models
from reelscribe.options import JobOptions
from workers import languages, transcriber
from workers.context import JobContext

log = structlog.get_logger(__name__)


def language_runs(
    model: Any,
    audio: Any,
    regions: list[speech.Region],
    start_s: float,
    end_s: float,
    options: JobOptions,
) -> list[languages.Run]:
    """The chunk's runs of one language each; a language of "" means the
    model's only language, "assumed" (English-only models)."""
    if options.language:
        # Requested: not detected, so its probability is 0 ("not measured").
        whole = languages.Unit(start_s, end_s, options.language, 0.0)
        return [languages.Run(start_s, end_s, options.language, (whole,))]
    if not transcriber.is_multilingual(model):
        assumed = languages.Unit(start_s, end_s, "", 0.0)
        return [languages.Run(start_s, end_s, "", (assumed,))]
    units = languages.identify_units(
        lambda clip: transcriber.identify(model, clip), audio, regions, start_s, end_s
    )
    return languages.runs(units, start_s, end_s) or [
        languages.Run(start_s, end_s, "", (languages.Unit(start_s, end_s, "", 0.0),))
    ]


def decode_run(
    ctx: JobContext,
    model: Any,
    audio: Any,
    regions: list[speech.Region],
    run: languages.Run,
    options: JobOptions,
) -> list[dict[str, Any]]:
    """The segments of one run, on the original timeline, each with its language."""
    settings = ctx.settings
    clip, time_map = speech.compact(
        audio, run.start_s, run.end_s, regions, keep_silence_s=settings.keep_silence_s
    )
    _, segments = transcriber.transcribe(
        model,
        clip,
        language=speech_models.whisper_language(run.language) or None,
        word_timestamps=not options.disable_word_timestamps,
        beam_size=settings.whisper_beam_size,
        between_segments=ctx.check_cancelled,
    )
    # Cantonese decodes as Chinese; its text is kept in traditional characters.
    cantonese_text = speech_models.primary_language(run.language) == speech_models.CANTONESE
    stored: list[dict[str, Any]] = []
    for seg in segments:
        ctx.check_cancelled()
        start = time_map.to_original(seg.start_s)
        end = time_map.to_original(seg.end_s)
        words: list[dict[str, Any]] = []
        for w in seg.words:
            w_start = time_map.to_original(w.start_s)
            # A word ends where its speech ends, never inside the next silence.
            w_end = max(
                w_start,
                min(time_map.to_original(w.end_s), speech.speech_end_after(regions, w_start)),
            )
            text = cantonese.to_traditional(w.text) if cantonese_text else w.text
            words.append(
                {"start_s": w_start, "end_s": w_end, "text": text, "probability": w.probability}
            )
        if words:
            end = max(min(end, float(words[-1]["end_s"])), start)
        stored.append(
            {
                "start_s": start,
                "end_s": end,
                "text": cantonese.to_traditional(seg.text) if cantonese_text else seg.text,
                "avg_logprob": seg.avg_logprob,
                "no_speech_prob": seg.no_speech_prob,
                "compression_ratio": seg.compression_ratio,
                "words": words,
                # English-only models: "en", assumed (probability 0).
                "language": run.language or "en",
                "language_probability": run.probability_at(start, end),
                "other_language_suspected": False,
            }
        )
    return stored


def recheck_doubtful(
    ctx: JobContext,
    model: Any,
    audio: Any,
    regions: list[speech.Region],
    run: languages.Run,
    decoded: list[dict[str, Any]],
    options: JobOptions,
) -> list[dict[str, Any]]:
    """Segments of a run that decoded doubtfully, identified again on their own.

    A window identified as one language can hold speech in another (a switch
    without a pause, inside one VAD region): decoded in the wrong language,
    those segments come out with unsure words. Each stretch of consecutive
    doubtful segments is identified on its own audio; when it is confidently
    another language, it is decoded again in that language and replaces them.
    Only doubtful speech pays for the extra identification.
    """
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(decoded):
        seg = decoded[i]
        if not languages.looks_foreign(seg["text"], [w["probability"] for w in seg["words"]]):
            out.append(seg)
            i += 1
            continue
        j = i
        while j + 1 < len(decoded) and languages.looks_foreign(
            decoded[j + 1]["text"], [w["probability"] for w in decoded[j + 1]["words"]]
        ):
            j += 1
        left = (out[-1]["end_s"] + seg["start_s"]) / 2 if out else run.start_s
        right = (
            (decoded[j]["end_s"] + decoded[j + 1]["start_s"]) / 2
            if j + 1 < len(decoded)
            else run.end_s
        )
        units = languages.identify_units(
            lambda clip: transcriber.identify(model, clip), audio, regions, left, right
        )
        heard = max(units, key=lambda u: u.end_s - u.start_s, default=None)
        if (
            heard is not None
            and heard.language != run.language
            and heard.probability >= languages.CONFIDENT
        ):
            again = languages.Run(left, right, heard.language, tuple(units))
            out.extend(decode_run(ctx, model, audio, regions, again, options))
        else:
            out.extend(decoded[i : j + 1])
        i = j + 1
    return out


def flag_other_languages(ctx: JobContext, path: Path, stored: list[dict[str, Any]]) -> None:
    """Flag the segments an English-only model probably heard in another language.

    Segments that decoded doubtfully (unsure words, repeating text) are
    candidates. When the multilingual model is installed, its language
    identification settles each candidate (one encoder pass per 30 s of
    candidate speech, only for doubtful segments); without it, the decoding's
    doubt alone flags the segment.
    """
    candidates = [
        s
        for s in stored
        if languages.looks_foreign(s["text"], [w["probability"] for w in s["words"]])
    ]
    if not candidates:
        return
    try:
        model = transcriber.multilingual_model(ctx.settings)
    except speech_models.ModelError as exc:
        model = None
        log.info("no multilingual model to check languages", error=exc.message)
    if model is None:
        for s in candidates:
            s["other_language_suspected"] = True
        return
    audio = np.memmap(path, dtype=np.float32, mode="r")
    spans = [speech.Region(s["start_s"], s["end_s"], True) for s in candidates]
    units = languages.identify_units(
        lambda clip: transcriber.identify(model, clip),
        audio,
        spans,
        spans[0].start_s,
        spans[-1].end_s,
    )
    for s in candidates:
        heard = max(
            units,
            key=lambda u: min(s["end_s"], u.end_s) - max(s["start_s"], u.start_s),
            default=None,
        )
        s["other_language_suspected"] = heard is not None and heard.language != "en"


def chunk_language(stored: list[dict[str, Any]]) -> tuple[str, float]:
    """The chunk's language by speech time, with its time-weighted probability."""
    time_by: dict[str, float] = {}
    weighted: dict[str, float] = {}
    for s in stored:
        span = max(s["end_s"] - s["start_s"], 0.0)
        time_by[s["language"]] = time_by.get(s["language"], 0.0) + span
        weighted[s["language"]] = (
            weighted.get(s["language"], 0.0) + span * s["language_probability"]
        )
    if not time_by:
        return "", 0.0
    language = max(time_by, key=time_by.__getitem__)
    total = time_by[language]
    return language, (weighted[language] / total if total else 0.0)
