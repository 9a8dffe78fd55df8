"""Key phrases: noun phrases ranked by how well they stand for a stretch of text.

Candidates are spaCy noun chunks with leading determiners, pronouns and numbers dropped and at
least one content word left. A phrase's relevance is the cosine similarity of its embedding to the
embedding of the text it should stand for (the centroid of that text's sentences), minus half its
best similarity to any `contrast` centroid (other chapters), so titles say what sets a chapter
apart; a small bonus for repetition, log(1 + count) / 10, prefers what was said more than once.
Near-duplicates (cosine >= 0.8 to a phrase already kept, or one contained in the other) are
dropped. Everything here is per episode: an episode's keywords never depend on other episodes,
so the stage stays a pure function of its inputs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from media_assets.lib.speech.timed_text import TimedText

_DROP_LEADING = {"DET", "PRON", "NUM", "PART", "CCONJ", "ADP", "PUNCT"}
_CONTENT = {"NOUN", "PROPN", "ADJ", "VERB"}
DUPLICATE_SIMILARITY = 0.8


@dataclass(frozen=True)
class Candidate:
    phrase: str  # lower-cased: the key that merges mentions
    text: str  # as first said, common nouns lower-cased, names as spelled ("planets", "NASA")
    count: int
    first_time: float  # when it was first said (s)


@dataclass(frozen=True)
class KeyPhrase:
    phrase: str
    text: str
    score: float
    count: int
    first_time: float


def candidates(docs: Iterable[tuple[object, int]], timed: TimedText) -> list[Candidate]:
    """Noun-chunk candidates of spaCy Docs over `timed.text` (each Doc with the offset of its text),
    merged case-insensitively, in order of first mention."""
    found: dict[str, Candidate] = {}
    for doc, offset in docs:
        for chunk in doc.noun_chunks:
            tokens = list(chunk)
            while tokens and (tokens[0].pos_ in _DROP_LEADING or tokens[0].is_stop):
                tokens = tokens[1:]
            if not any(t.pos_ in _CONTENT and not t.is_stop and t.is_alpha for t in tokens):
                continue
            text = "".join(_cased(t) + t.whitespace_ for t in tokens).strip(" .,;:!?'\"")
            phrase = text.lower()
            if len(phrase) < 3:
                continue
            if seen := found.get(phrase):
                found[phrase] = dataclasses.replace(seen, count=seen.count + 1)
            elif span := timed.time_span(offset + tokens[0].idx, offset + tokens[-1].idx + len(tokens[-1])):
                found[phrase] = Candidate(phrase, text, 1, span[0])
    return list(found.values())


def merge(*sources: list[Candidate]) -> list[Candidate]:
    """Candidates of several texts (transcript, captions) as one list: counts added, first time kept."""
    merged: dict[str, Candidate] = {}
    for candidate in sorted((c for source in sources for c in source), key=lambda c: c.first_time):
        seen = merged.get(candidate.phrase)
        merged[candidate.phrase] = dataclasses.replace(seen, count=seen.count + candidate.count) if seen else candidate
    return list(merged.values())


def rank(
    found: list[Candidate],
    target: np.ndarray,
    embedder,
    contrast: np.ndarray | None = None,
    limit: int = 10,
) -> list[KeyPhrase]:
    """The `limit` best candidates for the text whose unit centroid is `target`, best first."""
    if not found:
        return []
    vectors = embedder.encode([c.phrase for c in found])
    relevance = vectors @ target
    if contrast is not None and len(contrast):
        relevance = relevance - 0.5 * (vectors @ contrast.T).max(axis=1)
    scores = relevance + np.array([math.log1p(c.count) / 10 for c in found])
    order = sorted(range(len(found)), key=lambda i: (-scores[i], found[i].first_time))
    kept: list[int] = []
    for i in order:
        if len(kept) == limit:
            break
        if any(_duplicates(found[i].phrase, found[j].phrase, vectors[i] @ vectors[j]) for j in kept):
            continue
        kept.append(i)
    return [
        KeyPhrase(found[i].phrase, found[i].text, round(float(scores[i]), 4), found[i].count, found[i].first_time)
        for i in kept
    ]


def _cased(token) -> str:
    """Names and acronyms as spelled, other words lower-cased (a sentence-initial "Stars" is "stars")."""
    return token.text if token.pos_ == "PROPN" or (len(token.text) > 1 and token.text.isupper()) else token.text.lower()


def _duplicates(a: str, b: str, similarity: float) -> bool:
    return similarity >= DUPLICATE_SIMILARITY or f" {a} " in f" {b} " or f" {b} " in f" {a} "


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The unit-length mean direction of unit vectors (zeros when there are none)."""
    if not len(vectors):
        return np.zeros(vectors.shape[1] if vectors.ndim == 2 else 0, dtype=np.float32)
    mean = vectors.mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else mean


def title(phrases: list[KeyPhrase], words: int = 6) -> str:
    """A short title from the best one or two key phrases: 'Tomato sauce and fresh basil'."""
    picked: list[str] = []
    for phrase in phrases[:2]:
        if sum(len(p.split()) for p in picked) + len(phrase.text.split()) <= words:
            picked.append(phrase.text)
    text = " and ".join(picked)
    return text[:1].upper() + text[1:]
