"""Zero-shot topic classification of a transcript against the built-in taxonomy (`taxonomy.CATEGORIES`).

Method:
1. The passages (sentences, Whisper segments, paragraphs: any chunking of the text) are re-cut into
   windows of about a minute of speech (`windows`): consecutive short passages are packed together
   until a window holds at least `MIN_WORDS` words, and a passage longer than `MAX_WORDS` is split.
   A single sentence is too little text for a stable embedding ("Our guest today is ..." is about
   nothing), a whole episode too much (it blurs into its most generic words); a minute of speech is
   about one topic. Re-cutting also makes the scores independent of how the caller chunked the text.
2. Each window and each category description is embedded (unit vectors; the descriptions once per
   embedder), and each window's cosine similarities to the descriptions are turned into a probability
   over the categories by a softmax with the fixed temperature `TEMPERATURE`.
3. An episode's score for a category is the word-weighted mean of its windows' probabilities.
   (The mean similarity, or the cosine of the mean embedding, which ranks the same, says how close
   the episode is on average, not how much of it is about what; voting per window gives a mixed
   episode its topics' shares.)

What a score means: the share of the episode, in [0, 1], that is about the category; the scores of
all categories sum to 1 (up to rounding). On the known-answer scripts of `scripts.py` an episode
about one topic scores 0.75 to 0.99 for it and under 0.1 for any other category; the three-topic
episode gets 0.15 to 0.35 for each of its topics; text about none of the categories is spread out
(small talk, a weather report: no category above 0.3). The temperature was chosen on those scripts
with all-MiniLM-L6-v2, whose window-to-description cosines are 0.2 to 0.7 (median 0.4) for the right
category and -0.05 to 0.33 (median 0.06) for the others: a lower temperature makes every window's
vote all-or-nothing, a higher one pulls every score towards 1/19.

Empty input (no passages, or only whitespace) gives every category a score of 0.0: no evidence, not
a uniform spread. Scores are deterministic for a given embedder and device.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from media_assets.lib.text.taxonomy import CATEGORIES

MIN_WORDS = 40
MAX_WORDS = 80
TEMPERATURE = 0.05
_WORD = re.compile(r"\S+")


def windows(passages: list[str], min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[str]:
    """`passages` re-cut into windows, in order, every word kept.

    A passage longer than `max_words` is first split into near-equal parts; then consecutive parts are
    joined until a window has at least `min_words` words (typically 40 to 80 for sentences; always
    fewer than `min_words + max_words`). A short remainder at the end joins the window before it while
    that stays under `min_words + max_words` words, else it is a window of its own, as is a text
    shorter than `min_words` in all.
    """
    pieces = [part for passage in passages for part in _split_long(_WORD.findall(passage), max_words)]
    out: list[list[str]] = []
    current: list[str] = []
    for piece in pieces:
        current.extend(piece)
        if len(current) >= min_words:
            out.append(current)
            current = []
    if current:
        if out and len(out[-1]) + len(current) < max_words + min_words:
            out[-1].extend(current)
        else:
            out.append(current)
    return [" ".join(words) for words in out]


def _split_long(words: list[str], max_words: int) -> list[list[str]]:
    """`words` in near-equal consecutive parts of at most `max_words` words (none when empty)."""
    if not words:
        return []
    parts = -(-len(words) // max_words)
    size = -(-len(words) // parts)
    return [words[i : i + size] for i in range(0, len(words), size)]


@functools.lru_cache(maxsize=8)
def _prototypes(embedder) -> np.ndarray:
    """The unit embeddings of the category descriptions, in `CATEGORIES` order, once per embedder."""
    return embedder.encode([category.description for category in CATEGORIES])


def _softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = np.exp((x - x.max(axis=-1, keepdims=True)) / temperature)
    return z / z.sum(axis=-1, keepdims=True)


def window_probabilities(texts: list[str], embedder, temperature: float = TEMPERATURE) -> np.ndarray:
    """One row per text: its probability over `CATEGORIES` (softmax of the cosine similarities)."""
    similarities = embedder.encode(texts) @ _prototypes(embedder).T
    return _softmax(similarities.astype(np.float64), temperature)


def classify(passages: list[str], embedder, temperature: float = TEMPERATURE) -> list[tuple[str, float]]:
    """(category id, score) for every category, best first (ties in `CATEGORIES` order).

    A score is the share of the text that is about the category (see the module docstring); all
    zeros when there is no text. `embedder` is a `text_models.Embedder` (anything hashable with
    `encode(list[str])` returning unit-length rows).
    """
    texts = windows(passages)
    if not texts:
        return [(category.id, 0.0) for category in CATEGORIES]
    weights = np.array([len(_WORD.findall(text)) for text in texts], dtype=np.float64)
    scores = weights @ window_probabilities(texts, embedder, temperature) / weights.sum()
    order = sorted(range(len(CATEGORIES)), key=lambda i: -scores[i])
    return [(CATEGORIES[i].id, float(np.clip(scores[i], 0.0, 1.0))) for i in order]
