"""Chapter boundaries from topic shifts, pauses and speaker changes (no Dagster, no I/O).

Every gap between two sentences is a candidate boundary with three features:

- topic depth (TextTiling, Hearst 1997, with sentence embeddings instead of word counts): the
  cosine similarity of the mean embeddings of the `block` sentences before and after the gap,
  and how deep that similarity valley is: (left peak - s) + (right peak - s), peaks found by
  climbing while the similarity rises. A topic change is a deep valley.
- pause: the silence between the two sentences' words, scored pause / `full_pause_s` capped at 1.
- speaker shift: the total-variation distance between who talks in the `block` sentences before
  and after the gap (0: same mix; 1: entirely different people). Alternating dialogue scores
  low; an interview ending and a monologue starting scores high.

score = depth + pause_weight * pause + speaker_weight * shift. Gaps are taken best first while
their score clears the cutoff (mean + std / 2 of all gap scores, and at least `min_score`) and
every chapter stays at least `min_seconds` long. A chapter still longer than `max_seconds` is
split at its best-scoring gap (reason "max_length"). An episode too short for two chapters, or
with fewer than 2 sentences, is one chapter.

A boundary is placed at the start of the first word after the gap, so a player jumps to speech.
Chapters cover the whole episode: the first starts at 0, the last ends at the episode's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from media_assets.lib.core.settings import knob
from media_assets.lib.speech.timed_text import Sentence
from media_assets.lib.text.keyphrases import centroid


@dataclass(frozen=True)
class ChapterSettings:
    min_seconds: float = knob(30.0, "chapter_min_seconds", "shortest chapter")
    max_seconds: float = knob(900.0, "chapter_max_seconds", "longest chapter before a forced split")
    block: int = knob(3, "chapter_block", "sentences per side in the topic and speaker comparisons")
    full_pause_s: float = knob(2.0, "chapter_full_pause_s", "a pause this long scores as a full boundary")
    pause_weight: float = knob(0.15, "chapter_pause_weight", "weight of pauses in a boundary's score")
    speaker_weight: float = knob(0.15, "chapter_speaker_weight", "weight of a change of who talks")
    min_score: float = knob(0.15, "chapter_min_score", "weakest boundary kept")


@dataclass(frozen=True)
class Gap:
    index: int  # the gap after sentence `index`
    time: float  # where a chapter would start: the next sentence's first word
    depth: float
    pause_s: float
    speaker_shift: float
    score: float


@dataclass(frozen=True)
class Boundary:
    time: float
    reason: str  # "episode_start" or '+'-joined of topic_shift, pause, speaker_change, max_length
    gap: Gap | None
    first_sentence: int


def gaps(sentences: Sequence[Sentence], embeddings: np.ndarray, settings: ChapterSettings) -> list[Gap]:
    similarity = [_block_similarity(embeddings, g, settings.block) for g in range(len(sentences) - 1)]
    depth = _depth_scores(similarity)
    found = []
    for g in range(len(sentences) - 1):
        pause = max(0.0, sentences[g + 1].start - sentences[g].end)
        shift = _speaker_shift(sentences, g, settings.block)
        score = depth[g] + settings.pause_weight * min(pause / settings.full_pause_s, 1.0)
        score += settings.speaker_weight * shift
        found.append(
            Gap(g, sentences[g + 1].start, round(depth[g], 4), round(pause, 3), round(shift, 4), round(score, 4))
        )
    return found


def boundaries(
    sentences: Sequence[Sentence], embeddings: np.ndarray, duration: float, settings: ChapterSettings
) -> list[Boundary]:
    """The chapter starts, the first at 0.0, sorted by time."""
    start = Boundary(0.0, "episode_start", None, 0)
    if len(sentences) < 2 or duration < 2 * settings.min_seconds:
        return [start]
    candidates = gaps(sentences, embeddings, settings)
    scores = np.array([g.score for g in candidates])
    cutoff = max(float(scores.mean() + scores.std() / 2), settings.min_score)
    chosen: list[Gap] = []
    for gap in sorted(candidates, key=lambda g: -g.score):
        if gap.score < cutoff:
            break
        if _fits(gap.time, [g.time for g in chosen], duration, settings.min_seconds):
            chosen.append(gap)
    forced = _split_long(candidates, sorted(g.time for g in chosen), duration, settings)
    result = [start]
    for gap in sorted(chosen + forced, key=lambda g: g.time):
        reason = "max_length" if gap in forced else _reason(gap, settings)
        result.append(Boundary(gap.time, reason, gap, gap.index + 1))
    return result


def _block_similarity(embeddings: np.ndarray, gap: int, block: int) -> float:
    left = centroid(embeddings[max(0, gap - block + 1) : gap + 1])
    right = centroid(embeddings[gap + 1 : gap + 1 + block])
    return float(left @ right)


def _depth_scores(similarity: list[float]) -> list[float]:
    depths = []
    for g, s in enumerate(similarity):
        left = right = s
        for value in reversed(similarity[:g]):
            if value < left:
                break
            left = value
        for value in similarity[g + 1 :]:
            if value < right:
                break
            right = value
        depths.append((left - s) + (right - s))
    return depths


def _speaker_shift(sentences: Sequence[Sentence], gap: int, block: int) -> float:
    before = _talk_share(sentences[max(0, gap - block + 1) : gap + 1])
    after = _talk_share(sentences[gap + 1 : gap + 1 + block])
    if not before or not after:
        return 0.0
    return 0.5 * sum(abs(before.get(s, 0.0) - after.get(s, 0.0)) for s in before.keys() | after.keys())


def _talk_share(sentences: Sequence[Sentence]) -> dict[str, float]:
    talk: dict[str, float] = {}
    for sentence in sentences:
        if sentence.speaker is not None:
            talk[sentence.speaker] = talk.get(sentence.speaker, 0.0) + sentence.end - sentence.start
    total = sum(talk.values())
    return {s: t / total for s, t in talk.items()} if total > 0 else {}


def _fits(time: float, chosen: list[float], duration: float, min_seconds: float) -> bool:
    return min(time, duration - time, *(abs(time - t) for t in chosen)) >= min_seconds


def _split_long(candidates: list[Gap], starts: list[float], duration: float, settings: ChapterSettings) -> list[Gap]:
    """Best-scoring gaps that cut every chapter longer than max_seconds (each part >= min_seconds)."""
    forced: list[Gap] = []
    edges = [0.0, *starts, duration]
    pending = list(zip(edges, edges[1:]))
    while pending:
        begin, end = pending.pop()
        if end - begin <= settings.max_seconds:
            continue
        inside = [g for g in candidates if min(g.time - begin, end - g.time) >= settings.min_seconds]
        if not inside:
            continue  # no sentence gap to cut at: a single very long sentence stays whole
        best = max(inside, key=lambda g: g.score)
        forced.append(best)
        pending += [(begin, best.time), (best.time, end)]
    return forced


def _reason(gap: Gap, settings: ChapterSettings) -> str:
    reasons = []
    if gap.depth >= settings.min_score:
        reasons.append("topic_shift")
    if gap.pause_s >= settings.full_pause_s / 2:
        reasons.append("pause")
    if gap.speaker_shift >= 0.5:
        reasons.append("speaker_change")
    return "+".join(reasons) or "combined"
