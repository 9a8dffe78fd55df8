"""Topic classification against the taxonomy, on the known-answer scripts (no ASR: text only)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from media_assets.demo import scripts
from media_assets.lib.text import classification
from media_assets.lib.text.taxonomy import CATEGORIES
from media_assets.lib.text.text_models import load_embedder, load_spacy

IDS = [category.id for category in CATEGORIES]


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


# --- taxonomy and scripts ------------------------------------------------------------


def test_taxonomy_ids_are_unique_snake_case_with_descriptions():
    assert 15 <= len(CATEGORIES) <= 20
    assert len(set(IDS)) == len(IDS)
    for category in CATEGORIES:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", category.id), category.id
        assert category.name.strip()
        assert len(category.description.split()) >= 15, category.id


def test_scripts_are_plain_minute_long_texts_keyed_by_category():
    assert set(scripts.TOPIC_SCRIPTS) <= set(IDS)
    assert set(scripts.THREE_TOPICS) <= set(scripts.TOPIC_SCRIPTS)
    for topic, sentences in scripts.TOPIC_SCRIPTS.items():
        text = scripts.script_text(topic)
        assert 10 <= len(sentences) <= 12, topic
        assert 150 <= len(text.split()) <= 190, topic
        assert not re.search(r"\d", text), topic


def test_three_topic_boundaries_are_where_the_topics_change():
    sentences = scripts.three_topic_sentences()
    first, second = scripts.three_topic_boundaries()
    food, science, _ = (scripts.TOPIC_SCRIPTS[topic] for topic in scripts.THREE_TOPICS)
    assert sentences[first] == science[0] and sentences[second - 1] == science[-1]
    assert sentences[first - 1] == food[-1]


def test_named_entities_are_found_by_spacy_with_their_label():
    assert 12 <= len(scripts.NAMED_ENTITIES) <= 15
    nlp = load_spacy()
    found = {
        topic: {(ent.text, ent.label_) for ent in nlp(scripts.script_text(topic)).ents}
        for topic in scripts.THREE_TOPICS
    }
    missing = [
        (topic, text, label) for topic, text, label in scripts.NAMED_ENTITIES if (text, label) not in found[topic]
    ]
    assert not missing, (missing, found)


# --- windows -------------------------------------------------------------------------


def test_windows_pack_short_passages_and_split_long_ones():
    words = [f"w{i}" for i in range(500)]
    long_windows = classification.windows([" ".join(words)])
    assert all(classification.MIN_WORDS <= len(w.split()) <= classification.MAX_WORDS for w in long_windows)
    assert " ".join(long_windows).split() == words
    short = [" ".join(words[i : i + 7]) for i in range(0, 105, 7)]  # 15 passages of 7 words
    packed = classification.windows(short)
    assert " ".join(packed).split() == words[:105]
    assert all(len(w.split()) >= classification.MIN_WORDS for w in packed)
    assert classification.windows(["a few words"]) == ["a few words"]
    assert classification.windows(["", "  "]) == []


# --- classify ------------------------------------------------------------------------


def _check_scores(result: list[tuple[str, float]]) -> None:
    assert sorted(category for category, _ in result) == sorted(IDS)
    scores = [score for _, score in result]
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("topic", sorted(scripts.TOPIC_SCRIPTS))
def test_each_script_ranks_its_own_category_first_by_a_clear_margin(embedder, topic):
    result = classification.classify(scripts.TOPIC_SCRIPTS[topic], embedder)
    _check_scores(result)
    (best, top), (_, runner_up) = result[:2]
    assert best == topic, result[:3]
    assert top >= 0.6 and runner_up <= 0.2, result[:3]  # measured: top 0.76-0.99, runner-up <= 0.09
    assert sum(score for _, score in result) == pytest.approx(1.0, abs=1e-6)


def test_the_same_script_as_one_string_scores_the_same(embedder):
    sentences = scripts.TOPIC_SCRIPTS["history"]
    assert classification.classify([" ".join(sentences)], embedder)[0][0] == "history"
    assert classification.classify(sentences, embedder) == classification.classify(sentences, embedder)


def test_three_topic_episode_shares_its_scores_between_its_topics(embedder):
    result = classification.classify(scripts.three_topic_sentences(), embedder)
    _check_scores(result)
    assert {category for category, _ in result[:3]} == set(scripts.THREE_TOPICS), result[:4]
    assert all(score >= 0.1 for _, score in result[:3]), result[:4]


def test_three_topics_are_separable_at_their_boundaries(embedder):
    """TextTiling-style: similarity of adjacent 3-sentence blocks has its two deepest minima at the boundaries."""
    vectors = embedder.encode(scripts.three_topic_sentences())

    def block(rows: np.ndarray) -> np.ndarray:
        mean = rows.mean(axis=0)
        return mean / np.linalg.norm(mean)

    curve = {
        gap: float(block(vectors[max(0, gap - 3) : gap]) @ block(vectors[gap : gap + 3]))
        for gap in range(1, len(vectors))
    }
    minima = [gap for gap in range(2, len(vectors) - 1) if curve[gap] <= min(curve[gap - 1], curve[gap + 1])]
    deepest = sorted(sorted(minima, key=curve.get)[:2])
    assert deepest == scripts.three_topic_boundaries(), curve


@pytest.mark.parametrize("passages", [[], [""], ["   ", "\n"]])
def test_empty_input_scores_zero_for_every_category(embedder, passages):
    result = classification.classify(passages, embedder)
    assert [category for category, _ in result] == IDS
    assert all(score == 0.0 for _, score in result)
