"""Speaker attribution by time overlap, and subtitle cues within the line/duration limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from media_assets.lib.media.embedded import parse_srt
from media_assets.lib.speech.attribution import attribute
from media_assets.lib.speech.subtitles import (
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    MAX_LINES,
    build_cues,
    to_srt,
    to_webvtt,
)
from media_assets.lib.speech.timed_text import TimedWord


@dataclass(frozen=True)
class T:
    speaker_id: str
    start: float
    end: float


@dataclass(frozen=True)
class W:
    start: float
    end: float


TURNS = [T("A", 0.0, 4.0), T("B", 4.2, 8.0), T("A", 8.0, 9.0), T("B", 20.0, 21.0)]


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (1.0, 1.5, "A"),  # inside a turn
        (3.8, 4.6, "B"),  # 0.2 s with A, 0.4 s with B: largest overlap wins
        (7.5, 8.6, "A"),  # 0.5 s B, 0.6 s A
        (4.05, 4.15, "A"),  # in the gap, nearest turn end is 0.05 s away
        (9.3, 9.4, "A"),  # after the last A turn, within tolerance
        (12.0, 12.5, None),  # far from every turn
    ],
)
def test_largest_overlap_then_nearest_within_tolerance(start, end, expected) -> None:
    assert attribute([W(start, end)], TURNS, tolerance=0.5) == [expected]


def test_attribution_sums_overlap_over_several_turns_of_one_speaker() -> None:
    turns = [T("A", 0.0, 1.0), T("B", 1.0, 2.5), T("A", 2.5, 4.0)]
    assert attribute([W(0.0, 4.0)], turns) == ["A"]  # A: 2.5 s in two pieces, B: 1.5 s


def test_no_turns_gives_no_speaker() -> None:
    assert attribute([W(0.0, 1.0)], []) == [None]


def words_from(text: str, speaker: str, start: float, per_word: float = 0.3) -> list[TimedWord]:
    return [
        TimedWord(start + i * per_word, start + (i + 1) * per_word - 0.05, word, speaker)
        for i, word in enumerate(text.split())
    ]


def test_cues_respect_limits_and_speaker_changes() -> None:
    long_text = " ".join(f"word{i}" for i in range(60))
    words = words_from(long_text, "SPEAKER_00", 0.0) + words_from("Short reply here.", "SPEAKER_01", 30.0)
    cues = build_cues(words)
    for cue in cues:
        assert len(cue.lines) <= MAX_LINES
        assert all(len(line) <= MAX_LINE_CHARS for line in cue.lines)
        assert cue.end - cue.start <= MAX_CUE_SECONDS
    assert [c.speaker for c in cues][-1] == "SPEAKER_01"
    assert cues[-1].lines == ("SPEAKER_01: Short reply here.",)
    assert all(c.speaker == "SPEAKER_00" for c in cues[:-1])
    spoken = " ".join(" ".join(c.lines) for c in cues)
    assert re.sub(r"SPEAKER_\d\d: ", "", spoken) == long_text + " Short reply here."


def test_slow_speech_is_cut_at_seven_seconds() -> None:
    cues = build_cues(words_from("one two three four five six seven", "S", 0.0, per_word=2.0))
    assert all(c.end - c.start <= MAX_CUE_SECONDS for c in cues) and len(cues) >= 2


def test_srt_and_webvtt_render_and_parse_back() -> None:
    cues = build_cues(words_from("Hello there.", "SPEAKER_00", 1.5) + words_from("Hi!", "SPEAKER_01", 3661.0))
    srt = to_srt(cues)
    assert parse_srt(srt) == [(1.5, 2.05, "SPEAKER_00: Hello there."), (3661.0, 3661.25, "SPEAKER_01: Hi!")]
    vtt = to_webvtt(cues)
    assert vtt.startswith("WEBVTT\n")
    assert "00:00:01.500 --> 00:00:02.050\n<v SPEAKER_00>Hello there." in vtt
    assert "01:01:01.000 --> 01:01:01.250\n<v SPEAKER_01>Hi!" in vtt
