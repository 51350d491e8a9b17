"""The local provider and highlight selection on hand-made transcripts."""

from __future__ import annotations

import pytest

from reelscribe.embeddings import get_embedder
from reelscribe.insights import CannotTranslate, Importance, Seg, keyphrases, plan, sentences
from reelscribe.insights.highlights import choose
from reelscribe.insights.local import NO_ANSWER, LocalProvider
from reelscribe.options import JobOptions
from reelscribe.speech import Region

TOPICS = {
    "baking": [
        "Bread rises because yeast produces carbon dioxide.",
        "Knead the dough until it is smooth and elastic.",
        "Let the dough rest in a warm place for an hour.",
        "Bake the loaf until the crust turns golden brown.",
    ],
    "planets": [
        "Jupiter is the largest planet in the solar system.",
        "Saturn is famous for its bright icy rings.",
        "Mars is a small red planet with two moons.",
        "Neptune is a cold blue planet far from the sun.",
    ],
    "health": [
        "Regular exercise strengthens the heart and the lungs.",
        "Sleep helps the brain store new memories.",
        "Drinking water keeps the body cool on hot days.",
        "Vaccines train the immune system to fight germs.",
    ],
}


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider(get_embedder())


def lecture(seconds_per_segment: float = 30.0) -> list[Seg]:
    texts = [t for sentences in TOPICS.values() for t in sentences]
    return [
        Seg(i, i * seconds_per_segment, i * seconds_per_segment + seconds_per_segment - 2, t)
        for i, t in enumerate(texts)
    ]


def test_chapters_start_where_the_topic_changes(provider: LocalProvider) -> None:
    result = provider.analyze(lecture())  # 6 minutes: three chapters wanted
    starts = [c.start_s for c in result.chapters]
    assert starts == [0.0, 120.0, 240.0]
    assert [c.end_s for c in result.chapters] == [120.0, 240.0, 358.0]
    assert (
        "dough" in result.chapters[0].title.lower() or "bread" in result.chapters[0].title.lower()
    )
    planets = ("planet", "jupiter", "saturn", "mars", "neptune")
    assert any(word in result.chapters[1].title.lower() for word in planets)


def test_summaries_are_sentences_of_the_transcript(provider: LocalProvider) -> None:
    segs = lecture()
    result = provider.analyze(segs)
    texts = {s.text for s in segs}
    by_format = {s.format: s for s in result.summaries}
    assert set(by_format) == {"short", "bullets", "detailed"}
    assert len(by_format["bullets"].bullets) == 5
    assert set(by_format["bullets"].bullets) <= texts
    # Maximal marginal relevance: the short summary does not stay in one topic.
    short = by_format["short"].text
    topics_touched = {
        name for name, sentences in TOPICS.items() if any(t in short for t in sentences)
    }
    assert len(topics_touched) >= 2
    assert len(result.importance) == len(segs)
    assert all(0.0 <= i.score <= 1.0 and i.reason for i in result.importance)


def test_empty_and_untranslatable(provider: LocalProvider) -> None:
    empty = provider.analyze([])
    assert all(s.text == "" for s in empty.summaries) and not empty.chapters
    with pytest.raises(CannotTranslate):
        provider.translate(lecture(), "fr")
    answer = provider.answer("what makes bread rise", lecture()[:2])
    assert answer.cited == (0, 1) and "yeast" in answer.text


def test_highlights_grow_to_sentences_and_snap_to_silences() -> None:
    segs = [
        Seg(0, 0.0, 2.0, "The first part"),
        Seg(1, 2.0, 4.0, "of a long sentence."),
        Seg(2, 5.0, 9.0, "A short one."),
        Seg(3, 10.0, 12.0, "And the last"),
        Seg(4, 12.0, 16.0, "thought here."),
    ]
    importance = [Importance(i, s, "why") for i, s in enumerate([0.1, 0.9, 0.2, 0.8, 0.3])]
    regions = [
        Region(0.0, 4.0, True),
        Region(4.0, 5.0, False),
        Region(5.0, 9.0, True),
        Region(9.0, 10.0, False),
        Region(10.0, 16.0, True),
        Region(16.0, 18.0, False),
    ]
    plans = choose(segs, importance, regions, count=2, min_s=3.0, max_s=60.0, duration_s=18.0)
    assert [(p.first_segment, p.last_segment) for p in plans] == [(0, 1), (3, 4)]
    first, second = plans
    # Whole sentences, edges moved into the neighbouring silence (half of it, ≤ 0.5 s).
    assert (first.start_s, first.end_s) == (0.0, 4.5)
    assert (second.start_s, second.end_s) == (9.5, 16.5)
    assert first.text == "The first part of a long sentence."
    assert first.score == 0.9


def test_derived_stages_bring_what_they_need() -> None:
    assert JobOptions.from_json({"extra_stages": ["RENDER_CLIPS"]}).requested_stages() == [
        "ANALYZE",
        "HIGHLIGHTS",
        "RENDER_CLIPS",
    ]
    assert JobOptions.from_json(
        {"translate_to": "fr", "highlight_count": 2}
    ).requested_stages() == [
        "ANALYZE",
        "HIGHLIGHTS",
        "TRANSLATE",
    ]
    assert JobOptions.from_json({}).requested_stages() == []
    assert plan.for_transcript(JobOptions.from_json({}), "yue") == ["ROMANIZE"]
    assert plan.for_transcript(JobOptions.from_json({}), "en") == []


#: A talk as Whisper cuts it: segments end mid-sentence, and one passage is said twice.
TALK = [
    "Permission is granted to any person who obtains a copy of the",
    "software, and to permit persons to whom the software is furnished to do so.",
    "Every copy must include the notice. Copies of the notice travel with",
    "the code. The copy rules apply to all copies, partial or whole.",
    "Planets orbit the sun on elliptical paths. The inner planets are small",
    "and rocky. The outer planets are giant balls of gas. Jupiter is the largest",
    "planet of all. Saturn has bright rings of ice.",
    "Every copy must include the notice.",
    "Exercise strengthens the heart. Sleep helps the brain store new memories.",
    "Drinking water keeps the body cool. Vaccines train the immune system.",
    "A balanced diet gives the body the vitamins it needs. Walking every day keeps",
    "the heart healthy.",
]


def talk(seconds_per_segment: float = 40.0) -> list[Seg]:
    step = seconds_per_segment
    return [Seg(i, i * step, i * step + step - 1, t) for i, t in enumerate(TALK)]


def test_sentences_cross_segment_boundaries_and_keep_their_times() -> None:
    got = sentences.split(talk(10.0))
    assert got[0].text == (
        "Permission is granted to any person who obtains a copy of the software, and to permit"
        " persons to whom the software is furnished to do so."
    )
    assert (got[0].start_s, got[0].end_s, got[0].segments) == (0.0, 19.0, (0, 1))
    assert got[1].text == "Every copy must include the notice."
    # "Copies of the notice travel with" + "the code.": begins inside segment 2.
    assert got[2].text == "Copies of the notice travel with the code."
    assert 20.0 < got[2].start_s < got[2].end_s < 39.0 and got[2].segments == (2, 3)
    assert [s.start_s for s in got] == sorted(s.start_s for s in got)
    # Abbreviations, initials and decimals end no sentence; CJK stops do.
    odd = sentences.split(
        [Seg(0, 0.0, 9.0, "Dr. Smith paid 3.5 dollars, e.g. coins. 好。对\uff01")]
    )
    assert [s.text for s in odd] == ["Dr. Smith paid 3.5 dollars, e.g. coins.", "好。", "对\uff01"]


def test_summaries_are_whole_sentences_without_repetition(provider: LocalProvider) -> None:
    whole = [s.text for s in sentences.split(talk())]
    result = provider.analyze(talk())
    by_format = {s.format: s for s in result.summaries}
    short = [s.text for s in sentences.split([Seg(0, 0, 1, by_format["short"].text)])]
    detailed = [s.text for s in sentences.split([Seg(0, 0, 1, by_format["detailed"].text)])]
    bullets = list(by_format["bullets"].bullets)
    assert len(short) == 3 and len(bullets) == 5
    for picked in (short, bullets, detailed):
        assert set(picked) <= set(whole), picked  # whole sentences, never fragments
        assert len(picked) == len(set(picked)), picked  # nothing twice
        assert picked == sorted(picked, key=whole.index)  # in time order
    # The detailed summary holds the others once each, not appended again.
    assert set(short) <= set(bullets) <= set(detailed)
    assert by_format["bullets"].text == "\n".join(f"- {b}" for b in bullets)


def test_chapter_titles_are_key_phrases_without_repeated_stems(provider: LocalProvider) -> None:
    result = provider.analyze(talk())
    titles = [c.title for c in result.chapters]
    assert len(titles) == 3 and all(titles)
    stem_sets = [keyphrases.stems(t) for t in titles]
    for title, stems in zip(titles, stem_sets, strict=True):
        assert " and " not in title and len(stems) == len(title.split()), title
        assert title[0].isupper() and title == title.strip()
    assert len(set(stem_sets)) == len(stem_sets), titles  # no two chapters alike
    assert keyphrases.stem("copies") == keyphrases.stem("copy") == keyphrases.stem("copied")
    assert keyphrases.candidates("copies and copy, carbon dioxide") == [
        "copies",
        "copy",
        "carbon",
        "dioxide",
        "carbon dioxide",
    ]
    assert keyphrases.shorten("The inner planets are small and rocky balls of iron.", 30) == (
        "The inner planets are small…"
    )


def test_questions_the_passages_do_not_answer_get_no_answer(provider: LocalProvider) -> None:
    passages = lecture()
    off = provider.answer("What is the capital of France?", passages[:5])
    assert (off.text, off.cited) == (NO_ANSWER, ())
    on = provider.answer("what makes bread rise", passages[:5])
    assert on.cited and on.cited[0] == 0 and "yeast" in on.text and NO_ANSWER not in on.text
    # Only passages close to the question are cited, never the unrelated ones.
    assert all("planet" not in passages[i].text for i in on.cited)
