"""Search quality: MRR@10 and recall@10 for keyword, semantic and hybrid search.

    .venv/bin/python -m bench.search_quality [--record]

Builds a small library of spoken lectures (espeak-ng, known text), runs it
through the whole system (upload → transcription → indexing), then asks
questions whose answer sentence is known: questions that share words with
their answer, questions naming an exact term that near-duplicate sentences in
other lectures lack, and paraphrases that share no content word with their
answer. A hit counts when its time span overlaps the answer sentence as
transcribed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
from datetime import date
from pathlib import Path

from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack
from bench.record import record
from reelscribe.auth import mint_token
from scripts.make_samples import encode_opus, speak

# Lecture → sentences; questions → (lecture, index of the answer sentence).
LECTURES = {
    "astronomy": [
        "The sun is a star made mostly of hydrogen and helium.",
        "Light from the sun takes about eight minutes to reach the earth.",
        "The moon has no atmosphere, so its sky is always black.",
        "Jupiter is the largest planet and has dozens of moons.",
        "A light year measures distance, not time.",
        "Saturn is a large planet famous for its bright rings.",
        "Mars is a small red planet with two tiny moons.",
    ],
    "cooking": [
        "Bread rises because yeast produces carbon dioxide.",
        "Salt draws water out of vegetables when they sit for a while.",
        "Searing meat at high heat creates a brown crust full of flavor.",
        "Rice should rest for ten minutes after cooking.",
        "Acid from lemon juice keeps cut apples from turning brown.",
        "Pasta should be cooked in plenty of salted boiling water.",
        "Dough needs time in a warm place before it goes in the oven.",
    ],
    "history": [
        "The printing press spread books across Europe in the fifteenth century.",
        "Roman roads connected cities across a vast empire.",
        "The first modern Olympic games were held in Athens in eighteen ninety six.",
        "Ancient Egyptians wrote on papyrus made from river reeds.",
        "The telegraph let messages cross continents in minutes.",
        "The Greek city of Athens was the birthplace of democracy.",
        "Medieval monks copied books by hand for years.",
    ],
    "health": [
        "Regular exercise strengthens the heart and lungs.",
        "Sleep helps the brain store new memories.",
        "Drinking enough water keeps the body cool.",
        "Vaccines train the immune system to recognize germs.",
        "Too much sugar can damage your teeth.",
        "Brushing twice a day protects your teeth from decay.",
        "Walking every day keeps the heart healthy.",
    ],
}
QUESTIONS = [
    # Sharing words with the answer.
    ("which planet is the largest", "astronomy", 3),
    ("how long does light from the sun take", "astronomy", 1),
    ("why does bread rise", "cooking", 0),
    ("lemon juice and apples", "cooking", 4),
    ("where were the first modern olympic games", "history", 2),
    ("what did egyptians write on", "history", 3),
    ("what does sleep do for memories", "health", 1),
    ("what do vaccines do", "health", 3),
    # Exact terms that near-duplicate sentences do not share.
    ("which planet has dozens of moons", "astronomy", 3),
    ("sugar and teeth", "health", 4),
    ("olympic games in athens", "history", 2),
    ("yeast", "cooking", 0),
    ("papyrus", "history", 3),
    ("helium", "astronomy", 0),
    # Paraphrases: no content word in common with the answer.
    ("what is our closest star composed of", "astronomy", 0),
    ("why is the lunar daytime dark", "astronomy", 2),
    ("what gives a steak its tasty outer layer", "cooking", 2),
    ("how long should grains sit once done", "cooking", 3),
    ("how did ideas travel quickly before radio", "history", 4),
    ("which ancient civilisation built long highways", "history", 1),
    ("what protects you from overheating", "health", 2),
    ("can sweets hurt your smile", "health", 4),
]
MODES = {
    "keyword": v1.SearchMode.KEYWORD,
    "semantic": v1.SearchMode.SEMANTIC,
    "hybrid": v1.SearchMode.HYBRID,
}
SECRET = "bench-secret-" + "q" * 32
ADDRESS = "127.0.0.1:50181"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _make_library(out: Path) -> dict[str, Path]:
    files = {}
    for name, sentences in LECTURES.items():
        path = out / f"{name}.ogg"
        if not path.exists():
            wav = out / f"{name}.wav"
            speak(" ".join(sentences), wav)
            encode_opus(wav, path)
        files[name] = path
    return files


async def _evaluate(address: str, files: dict[str, Path]) -> dict[str, tuple[float, float]]:
    token = mint_token(SECRET, "quality")
    async with ReelscribeClient(address, token, timeout_s=120) as client:
        jobs = {}
        for name, path in files.items():
            media = await client.upload(path)
            jobs[name] = (await client.create_job(media=media.name)).name
        spans: dict[str, list[tuple[float, float]]] = {}
        for name, job in jobs.items():
            async for _ in client.watch(job):
                pass
            transcript = await client.transcript(job, omit_words=True)
            # The answer's span: the transcribed segment sharing most words with it.
            spans[name] = []
            for sentence in LECTURES[name]:
                best = max(
                    transcript.segments, key=lambda s: len(_words(s.text) & _words(sentence))
                )
                spans[name].append((best.start_seconds, best.end_seconds))
        results = {}
        for mode_name, mode in MODES.items():
            reciprocal, found = 0.0, 0
            for question, lecture, idx in QUESTIONS:
                reply = await client.search(question, mode=mode, page_size=10)
                a0, a1 = spans[lecture][idx]
                for rank, hit in enumerate(reply.hits, start=1):
                    if hit.job == jobs[lecture] and hit.start_seconds < a1 and hit.end_seconds > a0:
                        reciprocal += 1 / rank
                        found += 1
                        break
            results[mode_name] = (reciprocal / len(QUESTIONS), found / len(QUESTIONS))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    out = Path(__file__).resolve().parents[1] / "out" / "search_quality"
    out.mkdir(parents=True, exist_ok=True)
    files = _make_library(out)
    with bench_stack(ADDRESS, SECRET, workers=(2, 1)):
        results = asyncio.run(_evaluate(ADDRESS, files))
    rows = [
        (mode, f"MRR@10 {mrr:.3f}, recall@10 {recall:.3f}")
        for mode, (mrr, recall) in results.items()
    ]
    best_single = max(results["keyword"][0], results["semantic"][0])
    rows.append(
        (
            "hybrid beats each alone (MRR@10)",
            f"{'yes' if results['hybrid'][0] > best_single else 'no'}",
        )
    )
    for name, value in rows:
        print(f"{name:<34} {value}")
    if args.record:
        cores = os.cpu_count() or 1
        record(
            "search_quality",
            title="Search quality: keyword vs semantic vs hybrid",
            command="python -m bench.search_quality",
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"{len(LECTURES)} spoken lectures (espeak-ng), {len(QUESTIONS)} questions: 8 "
                "sharing words with the answer, 6 naming exact terms that near-duplicate "
                "sentences lack, 8 paraphrases sharing no content word; a hit counts when it "
                "overlaps the answer sentence"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
