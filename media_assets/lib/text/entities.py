"""Named entities with when they were first said (no Dagster, no I/O).

spaCy parses the transcript in chunks of whole sentences (memory stays flat on hour-long
episodes; spaCy's own limit is 1M characters per doc). Each entity's character span maps back to
the words under it (`TimedText`), hence to the time it was said. Mentions are merged per
(normalized text, label): "the BBC" and "BBC" are one ORG; "Paris" as GPE and as PERSON stay two.
Numbers that are only numbers (CARDINAL, ORDINAL, QUANTITY, PERCENT, MONEY) are left out: they
are not things an episode is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from media_assets.lib.speech.timed_text import Sentence, TimedText

SKIPPED_LABELS = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})
CHUNK_CHARS = 5000
_LEADING_THE = re.compile(r"^the\s+", re.IGNORECASE)
_TRAILING = re.compile(r"(['’]s|[.,;:!?'\"’]+)$")


@dataclass(frozen=True)
class Mention:
    text: str
    label: str
    start: float
    end: float
    source: str  # "transcript" or "captions"


@dataclass(frozen=True)
class Entity:
    text: str  # as first said
    label: str
    mentions: int
    first_start: float
    first_end: float
    sources: tuple[str, ...]


def parse(nlp, timed: TimedText, sentences: Sequence[Sentence]) -> Iterator[tuple[object, int]]:
    """spaCy Docs over runs of whole sentences, each with its text's offset in `timed.text`."""
    spans: list[tuple[int, int]] = []
    for sentence in sentences:
        start, end = timed.char_start(sentence.first_word), timed.char_end(sentence.last_word)
        if spans and end - spans[-1][0] <= CHUNK_CHARS:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    texts = (timed.text[start:end] for start, end in spans)
    for (start, _), doc in zip(spans, nlp.pipe(texts, batch_size=8), strict=True):
        yield doc, start


def mentions(docs: Iterator[tuple[object, int]], timed: TimedText, source: str) -> list[Mention]:
    found = []
    for doc, offset in docs:
        for ent in doc.ents:
            if ent.label_ in SKIPPED_LABELS or not normalized(ent.text):
                continue
            span = timed.time_span(offset + ent.start_char, offset + ent.end_char)
            if span is not None:
                found.append(Mention(ent.text.strip(), ent.label_, span[0], span[1], source))
    return found


def display(text: str) -> str:
    """The entity without a leading "the" or trailing possessive/punctuation: "the BBC's" -> "BBC"."""
    return _TRAILING.sub("", _LEADING_THE.sub("", text.strip())).strip()


def normalized(text: str) -> str:
    return display(text).lower()


def merge(found: Sequence[Mention]) -> list[Entity]:
    """One entity per (normalized text, label), ordered by when it was first said."""
    groups: dict[tuple[str, str], list[Mention]] = {}
    for mention in sorted(found, key=lambda m: (m.start, m.end)):
        groups.setdefault((normalized(mention.text), mention.label), []).append(mention)
    entities = []
    for group in groups.values():
        first = group[0]
        entities.append(
            Entity(
                display(first.text),
                first.label,
                len(group),
                first.start,
                first.end,
                tuple(sorted({m.source for m in group})),
            )
        )
    return sorted(entities, key=lambda e: (e.first_start, e.text))
