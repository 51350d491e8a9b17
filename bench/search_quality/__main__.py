"""Search quality: MRR@10 and recall@10 for keyword, semantic and hybrid search.

    .venv/bin/python -m bench.search_quality [--record]

Builds a small library of spoken lectures (espeak-ng, known text), runs it
through the whole system (upload → transcription → indexing), then asks
questions whose answer sentence is known: questions that share words with
their answer, questions naming an exact term that near-duplicate sentences in
other lectures lack, and paraphrases that share no content word with their
answer. A hit counts when its time span overlaps the answer sentence as
transcribed.

It also calibrates the "not answered" of AskQuestion: for every question
above and for questions the library does not answer (OFF_TOPIC), the best
passage's semantic similarity (the score of the top SEMANTIC hit) and whether
AskQuestion answered with citations.
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
# A question that more than one sentence answers lists the others in ALSO.
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
    # Near neighbours of the lectures above: the same topics with other facts,
    # so that meaning alone no longer singles out one sentence.
    "planets": [
        "Venus is the hottest planet because its thick clouds trap heat.",
        "Neptune is a cold blue planet far from the sun.",
        "Mercury is the smallest planet and the closest to the sun.",
        "Uranus spins on its side, unlike the other planets.",
        "Saturn's moon Titan has lakes of liquid methane.",
        "Europa, a moon of Jupiter, may hide an ocean under its ice.",
        "Pluto was reclassified as a dwarf planet in two thousand six.",
    ],
    "baking": [
        "Sourdough uses wild yeast instead of packaged yeast.",
        "Butter must be cold to make flaky pastry.",
        "Baking soda needs an acid such as buttermilk to work.",
        "Cakes sink when the oven door is opened too early.",
        "Kneading dough builds gluten, which gives bread its chew.",
        "Sugar in cookies makes them spread and turn golden.",
        "Chocolate melts gently over a pan of simmering water.",
    ],
    "inventions": [
        "Alexander Graham Bell patented the telephone in eighteen seventy six.",
        "The steam engine powered factories during the industrial revolution.",
        "Gutenberg used movable metal type to print the Bible.",
        "Radio waves carried the first voice broadcasts across the ocean.",
        "The compass helped sailors navigate when clouds hid the stars.",
        "Paper was invented in China more than two thousand years ago.",
        "The lightbulb made it possible to work long after sunset.",
    ],
    "body": [
        "The liver filters toxins out of the blood.",
        "Calcium and vitamin D keep bones strong.",
        "Stretching before running can prevent muscle injuries.",
        "Caffeine can keep you awake long after your last coffee.",
        "Sunscreen protects the skin from ultraviolet rays.",
        "Fiber in vegetables helps digestion.",
        "Deep breathing slows the heart rate and calms the mind.",
    ],
    # Numbers and codes, the other thing people type into a library search.
    "travel": [
        "Route 66 ran from Chicago to Santa Monica.",
        "Apollo 11 landed on the moon in 1969.",
        "Apollo 13 returned to earth after an oxygen tank exploded.",
        "The Boeing 747 was the first wide body airliner.",
        "Ford built the Model T from 1908 to 1927.",
        "Highway 1 follows the coast of California.",
        "The Titanic sank in 1912 after hitting an iceberg.",
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
    # Names and rare terms among near neighbours.
    ("europa", "planets", 5),
    ("mercury", "planets", 2),
    ("titan methane", "planets", 4),
    ("sourdough", "baking", 0),
    ("buttermilk", "baking", 2),
    ("gluten", "baking", 4),
    ("gutenberg", "inventions", 2),
    ("graham bell", "inventions", 0),
    ("calcium", "body", 1),
    ("ultraviolet", "body", 4),
    # Paraphrases among near neighbours.
    ("which world in our solar system is the hottest", "planets", 0),
    ("why does my sponge collapse while it bakes", "baking", 3),
    ("how did ships find their way under an overcast sky", "inventions", 4),
    ("what keeps you from getting sunburned", "body", 4),
    ("which organ cleans poisons from your system", "body", 0),
    # Numbers and codes among near neighbours.
    ("apollo 13", "travel", 2),
    ("route 66", "travel", 0),
    ("boeing 747", "travel", 3),
    ("what happened in 1912", "travel", 6),
    ("model t", "travel", 4),
]
#: Questions no lecture answers: some far from every topic, some near one
#: (spiders, sound, honey) without the fact asked for.
OFF_TOPIC = [
    "What is the capital of France?",
    "Who won the football world cup in 2018?",
    "How do I reset my router password?",
    "What is the stock price of Apple?",
    "How many legs does a spider have?",
    "Which programming language is best for beginners?",
    "When was the Eiffel Tower built?",
    "How do magnets work?",
    "What is the tallest mountain in the world?",
    "How do I file my taxes?",
    "What does a lawyer do?",
    "What is the speed of sound?",
    "Who painted the Mona Lisa?",
    "How do I change a flat tyre?",
    "What is the population of Tokyo?",
    "How do bees make honey?",
]
#: Other sentences that answer a question equally well (near neighbours that
#: share its only term); a hit on any of them counts.
ALSO = {"yeast": [("baking", 0)]}
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


async def _evaluate(
    address: str, files: dict[str, Path], *, verbose: bool = False
) -> tuple[
    dict[str, tuple[float, float]], tuple[list[tuple[float, bool]], list[tuple[float, bool]]]
]:
    """MRR@10 and recall@10 per mode; (best similarity, cited) per answerable
    and per off-topic question."""
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
                answers = [
                    (jobs[name], *spans[name][i])
                    for name, i in [(lecture, idx), *ALSO.get(question, [])]
                ]
                got = 0
                for rank, hit in enumerate(reply.hits, start=1):
                    if any(
                        hit.job == job and hit.start_seconds < a1 and hit.end_seconds > a0
                        for job, a0, a1 in answers
                    ):
                        reciprocal += 1 / rank
                        found += 1
                        got = rank
                        break
                if verbose:
                    print(f"{mode_name:<9} rank {got or '-':>2}  {question}")
            results[mode_name] = (reciprocal / len(QUESTIONS), found / len(QUESTIONS))
        answerable = [await _answered(client, q) for q, _, _ in QUESTIONS]
        off_topic = [await _answered(client, q) for q in OFF_TOPIC]
        if verbose:
            for q, (best, cited) in zip(
                [q for q, _, _ in QUESTIONS] + OFF_TOPIC, answerable + off_topic, strict=True
            ):
                print(f"answer    best {best:.3f} {'cited' if cited else 'none '}  {q}")
        return results, (answerable, off_topic)


async def _answered(client: ReelscribeClient, question: str) -> tuple[float, bool]:
    """The best passage's semantic similarity, and whether AskQuestion cited anything."""
    top = await client.search(question, mode=v1.SearchMode.SEMANTIC, page_size=1)
    best = top.hits[0].semantic_score if top.hits else 0.0
    reply = await client.ask(question)
    return best, bool(reply.citations)


def _answer_rows(
    answerable: list[tuple[float, bool]], off_topic: list[tuple[float, bool]]
) -> list[tuple[str, str]]:
    def spread(values: list[float]) -> str:
        ordered = sorted(values)
        return (
            f"min {ordered[0]:.3f}, median {ordered[len(ordered) // 2]:.3f}, max {ordered[-1]:.3f}"
        )

    return [
        ("best passage similarity, answerable", spread([b for b, _ in answerable])),
        ("best passage similarity, off-topic", spread([b for b, _ in off_topic])),
        (
            "AskQuestion cites passages",
            f"answerable {sum(c for _, c in answerable)}/{len(answerable)}, "
            f"off-topic {sum(c for _, c in off_topic)}/{len(off_topic)}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print each question's rank")
    args = parser.parse_args()
    out = Path(__file__).resolve().parents[1] / "out" / "search_quality"
    out.mkdir(parents=True, exist_ok=True)
    files = _make_library(out)
    with bench_stack(ADDRESS, SECRET, workers=(2, 1)):
        results, (answerable, off_topic) = asyncio.run(
            _evaluate(ADDRESS, files, verbose=args.verbose)
        )
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
    rows += _answer_rows(answerable, off_topic)
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
                f"{len(LECTURES)} spoken lectures (espeak-ng; four of them near neighbours of "
                f"four others), {len(QUESTIONS)} questions: 8 sharing words with the answer, "
                "16 naming exact terms or names that near-neighbour sentences lack, 13 "
                "paraphrases sharing no content word, 5 numbers and codes; a hit counts when "
                f"it overlaps the answer sentence; {len(OFF_TOPIC)} questions no lecture answers"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
