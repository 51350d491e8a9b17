"""Decoding one chunk so that every segment carries its language.

With a multilingual model and no language requested, Whisper identifies each
decoding window as it decodes it (`decode_detected`), and doubtful stretches
are identified again on their own (`workers.languages`) and decoded in the
language heard. With a requested language or an English-only model the chunk
is one run in that language; for English-only models the segments probably
spoken in another language are flagged. `workers.stages` calls this module.
"""

from __future__ import annotations

from collections.abc import Callable
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
    """The chunk as one run: in the requested language, or, for English-only
    models, in the model's only language ("" means assumed)."""
    if options.language:
        # Requested: not detected, so its probability is 0 ("not measured").
        whole = languages.Unit(start_s, end_s, options.language, 0.0)
        return [languages.Run(start_s, end_s, options.language, (whole,))]
    # English-only model: its one language, assumed. (A multilingual model
    # with no language requested identifies as it decodes: `decode_detected`.)
    assumed = languages.Unit(start_s, end_s, "", 0.0)
    return [languages.Run(start_s, end_s, "", (assumed,))]


def decode_run(
    ctx: JobContext,
    model: Any,
    audio: Any,
    regions: list[speech.Region],
    run: languages.Run,
    options: JobOptions,
) -> list[dict[str, Any]]:
    """The segments of one run, on the original timeline, each with its language."""
    _, stored = _decode_span(
        ctx, model, audio, regions, run.start_s, run.end_s, run.language, options
    )
    for seg in stored:
        # English-only models: "en", assumed (probability 0).
        seg["language"] = run.language or "en"
        seg["language_probability"] = run.probability_at(seg["start_s"], seg["end_s"])
    return stored


def decode_detected(
    ctx: JobContext,
    model: Any,
    audio: Any,
    regions: list[speech.Region],
    start_s: float,
    end_s: float,
    options: JobOptions,
) -> list[dict[str, Any]]:
    """The chunk's segments with a multilingual model and no language requested.

    The speech is packed into windows that fit Whisper's 30 s input; each
    window is identified (`transcriber.identify`) and then decoded in its
    language, reusing the encoder output of the identification, so
    monolingual speech pays no extra encoder pass. A window that may hold a
    switch (unsure, or a neighbour heard another language) is identified again
    region by region and decoded run by run (`workers.languages`); doubtful
    segments are then checked on their own (`recheck_doubtful`).
    """
    keep_s = ctx.settings.keep_silence_s
    groups = languages.pack(languages.speech_spans(regions, start_s, end_s), gap_s=keep_s)
    tops = []
    for g in groups:
        clip, _ = speech.compact(audio, g[0][0], g[-1][1], regions, keep_silence_s=keep_s)
        tops.append(_identifier(ctx, model)(clip)[0])
    out: list[dict[str, Any]] = []
    for i, group in enumerate(groups):
        language, probability = tops[i]
        neighbours = {tops[j][0] for j in (i - 1, i + 1) if 0 <= j < len(groups)}
        mixed = probability < languages.CONFIDENT or bool(neighbours - {language})
        left = start_s if i == 0 else (groups[i - 1][-1][1] + group[0][0]) / 2
        right = end_s if i == len(groups) - 1 else (group[-1][1] + groups[i + 1][0][0]) / 2
        if mixed and len(group) > 1:
            units = languages.identify_spans(_identifier(ctx, model), audio, group)
            window_runs = languages.runs(units, left, right)
        else:
            whole = languages.Unit(group[0][0], group[-1][1], language, probability)
            window_runs = [languages.Run(left, right, language, (whole,))]
        for run in window_runs:
            if len(window_runs) == 1 and run.units[0].start_s == group[0][0]:
                # The window as identified: the same clip, so its encoder
                # output is reused.
                _, decoded = _decode_span(
                    ctx, model, audio, regions, group[0][0], group[-1][1], run.language, options
                )
                for seg in decoded:
                    seg["language"] = run.language
                    seg["language_probability"] = run.probability_at(seg["start_s"], seg["end_s"])
            else:
                decoded = decode_run(ctx, model, audio, regions, run, options)
            out.extend(recheck_doubtful(ctx, model, audio, regions, run, decoded, options))
    return out


def _decode_span(
    ctx: JobContext,
    model: Any,
    audio: Any,
    regions: list[speech.Region],
    start_s: float,
    end_s: float,
    language: str,
    options: JobOptions,
) -> tuple[transcriber.TranscriptionInfo, list[dict[str, Any]]]:
    """Decode [start_s, end_s] in `language` (empty: detect, or the model's only
    one): what the model reported, and the segments on the original timeline
    (without their language fields)."""
    settings = ctx.settings
    clip, time_map = speech.compact(
        audio, start_s, end_s, regions, keep_silence_s=settings.keep_silence_s
    )
    info, segments = transcriber.transcribe(
        model,
        clip,
        language=speech_models.whisper_language(language) or None,
        word_timestamps=not options.disable_word_timestamps,
        beam_size=settings.whisper_beam_size,
        between_segments=ctx.check_cancelled,
    )
    # Cantonese decodes as Chinese; its text is kept in traditional characters.
    cantonese_text = speech_models.primary_language(language) == speech_models.CANTONESE
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
                "other_language_suspected": False,
            }
        )
    return info, stored


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
        if not _doubtful(seg):
            out.append(seg)
            i += 1
            continue
        j = i
        while j + 1 < len(decoded) and _doubtful(decoded[j + 1]):
            j += 1
        left = (out[-1]["end_s"] + seg["start_s"]) / 2 if out else run.start_s
        right = (
            (decoded[j]["end_s"] + decoded[j + 1]["start_s"]) / 2
            if j + 1 < len(decoded)
            else run.end_s
        )
        units = languages.identify_units(_identifier(ctx, model), audio, regions, left, right)
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


def _identifier(ctx: JobContext, model: Any) -> Callable[[Any], list[tuple[str, float]]]:
    """`transcriber.identify` with the model, stopping first if the job was
    cancelled (each call is an encoder pass: seconds with base on long audio)."""

    def identify(clip: Any) -> list[tuple[str, float]]:
        ctx.check_cancelled()
        return transcriber.identify(model, clip)

    return identify


def _doubtful(seg: dict[str, Any]) -> bool:
    """A multilingual model's segment that may be in another language than its window's."""
    return languages.looks_foreign(
        seg["text"],
        [w["probability"] for w in seg["words"]],
        threshold=languages.RECHECK_WORD_PROBABILITY,
    )


def is_language_check_candidate(seg: dict[str, Any]) -> bool:
    """Whether an English-only model's segment decoded doubtfully enough to be
    checked for another language (`flag_other_languages`)."""
    return languages.looks_foreign(seg["text"], [w["probability"] for w in seg["words"]])


def flag_other_languages(ctx: JobContext, path: Path, stored: list[dict[str, Any]]) -> None:
    """Flag the segments an English-only model probably heard in another language.

    Segments that decoded doubtfully (unsure words, repeating text) are
    candidates. When the multilingual model is installed, its language
    identification settles each candidate (one encoder pass per 30 s of
    candidate speech, only for doubtful segments); without it, the decoding's
    doubt alone flags the segment.
    """
    candidates = [s for s in stored if is_language_check_candidate(s)]
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
        _identifier(ctx, model),
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
