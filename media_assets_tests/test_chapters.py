"""Chapter segmentation and timed text as pure functions, on inputs whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from media_assets.lib.speech.timed_text import Sentence, TimedText, TimedWord
from media_assets.lib.text.segmentation import ChapterSettings, boundaries, gaps


def _words(text: str, start: float = 0.0, per_word: float = 0.4, speaker: str | None = None) -> list[TimedWord]:
    return [
        TimedWord(start + i * per_word, start + (i + 1) * per_word - 0.1, w, speaker)
        for i, w in enumerate(text.split())
    ]


def test_character_spans_map_back_to_word_times():
    timed = TimedText(_words("Hello there. Maria Lopez lives in Paris!"))
    assert timed.text == "Hello there. Maria Lopez lives in Paris!"
    start = timed.text.index("Maria Lopez")
    assert timed.word_span(start, start + len("Maria Lopez")) == (2, 3)
    assert timed.time_span(start, start + len("Maria Lopez")) == pytest.approx((0.8, 1.5))
    paris = timed.text.index("Paris")
    assert timed.time_span(paris, paris + 5) == pytest.approx((2.4, 2.7))
    assert timed.word_span(1, 2) == (0, 0)  # a span inside a word maps to that word
    assert timed.word_span(5, 6) is None  # the space between two words


def test_sentences_end_at_punctuation_long_pauses_and_a_length_cap():
    words = _words("One two three. Four five?", speaker="A") + _words("six seven", start=5.0, speaker="B")
    words += _words(" ".join(["word"] * 45), start=10.0, speaker="B")
    sentences = TimedText(words).sentences()
    assert [s.text for s in sentences[:3]] == ["One two three.", "Four five?", "six seven"]
    assert [s.speaker for s in sentences[:3]] == ["A", "A", "B"]
    assert sentences[0].start == 0.0 and sentences[0].end == pytest.approx(1.1)
    assert [s.last_word - s.first_word + 1 for s in sentences[3:]] == [40, 5]  # cap at 40 words
    assert TimedText([TimedWord(0, 1, "  ")]).sentences() == []


def _topics(
    counts: list[int], seconds: float = 6.0, pause: float = 0.3, noise: float = 0.15, seed: int = 0
) -> tuple[list[Sentence], np.ndarray, list[float]]:
    """Sentences of consecutive topics; each topic's embeddings scatter around its own direction."""
    rng = np.random.default_rng(seed)
    axes = np.eye(16)
    sentences, vectors, starts, t = [], [], [], 0.0
    for topic, count in enumerate(counts):
        starts.append(t)
        for _ in range(count):
            sentences.append(Sentence("x", t, t + seconds - pause, None, 0, 0))
            vector = axes[topic] + noise * rng.normal(size=16)
            vectors.append(vector / np.linalg.norm(vector))
            t += seconds
    return sentences, np.array(vectors), starts


def test_topic_shifts_become_the_boundaries():
    sentences, vectors, starts = _topics([10, 10, 10])
    marks = boundaries(sentences, vectors, duration=sentences[-1].end + 1, settings=ChapterSettings())
    assert [m.time for m in marks] == [0.0, starts[1], starts[2]]
    assert marks[0].reason == "episode_start"
    assert all("topic_shift" in m.reason for m in marks[1:])
    assert [m.first_sentence for m in marks] == [0, 10, 20]


def test_min_length_wins_over_a_short_digression():
    sentences, vectors, starts = _topics([10, 3, 10])  # an 18 s aside: shorter than min_seconds = 30
    marks = boundaries(sentences, vectors, duration=sentences[-1].end, settings=ChapterSettings(min_seconds=30))
    assert len(marks) == 2
    assert all(min(b.time, 138 - b.time) >= 30 for b in marks[1:])


def test_long_monotopic_stretches_are_split_at_max_length():
    sentences, vectors, _ = _topics([60], noise=0.02)  # 360 s of one topic, no shift in it
    settings = ChapterSettings(min_seconds=30, max_seconds=100)
    marks = boundaries(sentences, vectors, duration=360.0, settings=settings)
    edges = [m.time for m in marks] + [360.0]
    assert all(b - a <= 100 for a, b in zip(edges, edges[1:]))
    assert all(b - a >= 30 for a, b in zip(edges, edges[1:]))
    assert all(m.reason == "max_length" for m in marks[1:])


def test_short_episodes_get_one_chapter():
    sentences, vectors, _ = _topics([2, 2])
    assert [m.reason for m in boundaries(sentences, vectors, 24.0, ChapterSettings())] == ["episode_start"]
    assert [m.time for m in boundaries([], np.zeros((0, 16)), 500.0, ChapterSettings())] == [0.0]


def test_pauses_and_speaker_changes_are_scored_and_named():
    sentences, vectors, _ = _topics([12, 12], pause=0.2)
    speakers = ["A"] * 12 + ["B"] * 12
    sentences = [
        Sentence(s.text, s.start, s.end - (2.5 if n == 11 else 0), spk, 0, 0)
        for n, (s, spk) in enumerate(zip(sentences, speakers))
    ]
    gap = gaps(sentences, vectors, ChapterSettings())[11]
    assert gap.pause_s == pytest.approx(2.7)
    assert gap.speaker_shift == 1.0
    marks = boundaries(sentences, vectors, sentences[-1].end, ChapterSettings())
    assert [m.reason for m in marks] == ["episode_start", "topic_shift+pause+speaker_change"]


def test_one_blas_thread_holds_numpy_blas_to_one_thread_and_restores_it() -> None:
    from threadpoolctl import threadpool_info

    from media_assets.lib.text.text_models import one_blas_thread

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    assert before  # numpy's BLAS is loaded
    with one_blas_thread():
        assert set(blas_threads()) == {1}
        product = np.ones((300, 300)) @ np.ones((300, 300))
    assert product[0, 0] == 300
    assert blas_threads() == before
