"""Speaker attribution: give each word or segment the speaker who talks over most of it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Protocol

NEAREST_TOLERANCE_S = 0.5


class Timed(Protocol):
    start: float
    end: float


class SpeakerTurn(Protocol):
    speaker_id: str
    start: float
    end: float


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


def speaker_for(start: float, end: float, turns: Sequence[SpeakerTurn], tolerance: float) -> str | None:
    """The speaker with the largest total overlap with [start, end]; with no overlap, the speaker of
    the nearest turn within `tolerance` seconds; otherwise None. Ties go to the earlier speaker."""
    talk: dict[str, float] = {}
    for turn in turns:
        if turn.start >= end:
            break
        if (shared := _overlap(start, end, turn.start, turn.end)) > 0:
            talk[turn.speaker_id] = talk.get(turn.speaker_id, 0.0) + shared
    if talk:
        return max(talk, key=lambda speaker: talk[speaker])
    gaps = [(max(turn.start - end, start - turn.end), turn.speaker_id) for turn in turns]
    near = [(gap, speaker) for gap, speaker in gaps if gap <= tolerance]
    return min(near)[1] if near else None


def attribute(
    items: Sequence[Timed], turns: Sequence[SpeakerTurn], tolerance: float = NEAREST_TOLERANCE_S
) -> list[str | None]:
    """Speaker ids for `items` (words or segments), in order. `turns` must be sorted by start."""
    starts = [turn.start for turn in turns]
    longest = max((turn.end - turn.start for turn in turns), default=0.0)
    speakers = []
    for item in items:
        # Only turns that can overlap or lie within tolerance matter: a window found by bisection.
        low = bisect_right(starts, item.start - longest - tolerance)
        high = bisect_right(starts, item.end + tolerance)
        speakers.append(speaker_for(item.start, item.end, turns[low:high], tolerance))
    return speakers
