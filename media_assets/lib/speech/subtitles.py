"""Speaker-labelled subtitles (SRT and WebVTT) from word timestamps.

Cue rules: at most 2 lines of at most 42 characters, at most 7 seconds; a new cue starts at
every speaker change and at sentence ends once the cue is half full. Cue times are the first
word's start and the last word's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from media_assets.lib.speech.timed_text import TimedWord

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    speaker: str | None
    lines: tuple[str, ...]


def wrap(words: Sequence[str], width: int = MAX_LINE_CHARS) -> list[str]:
    """Greedy line filling; a single word longer than `width` gets a line of its own."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _label(speaker: str | None) -> str:
    return f"{speaker}: " if speaker else ""


def _lines(words: Sequence[TimedWord]) -> list[str]:
    """The cue's text wrapped, the speaker label in front of the first word."""
    texts = [w.text for w in words]
    texts[0] = _label(words[0].speaker) + texts[0]
    return wrap(texts)


def _starts_new_cue(current: list[TimedWord], word: TimedWord) -> bool:
    if not current:
        return False
    if word.speaker != current[0].speaker:
        return True
    half_full = sum(len(w.text) + 1 for w in current) > MAX_LINE_CHARS * MAX_LINES // 2
    if half_full and current[-1].text[-1] in ".?!":
        return True
    candidate = [*current, word]
    return len(_lines(candidate)) > MAX_LINES or word.end - current[0].start > MAX_CUE_SECONDS


def build_cues(words: Sequence[TimedWord]) -> list[Cue]:
    """Group words into cues that respect the line, line-count and duration limits."""
    groups: list[list[TimedWord]] = []
    for word in words:
        text = word.text.strip()
        if not text:
            continue
        word = TimedWord(word.start, max(word.end, word.start), text, word.speaker)
        if not groups or _starts_new_cue(groups[-1], word):
            groups.append([])
        groups[-1].append(word)
    return [Cue(g[0].start, g[-1].end, g[0].speaker, tuple(_lines(g))) for g in groups]


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{n}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n" + "\n".join(c.lines) + "\n"
        for n, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def to_webvtt(cues: Sequence[Cue]) -> str:
    """WebVTT with the speaker as a voice span (`<v SPEAKER_00>`), which players show as a label."""
    blocks = ["WEBVTT\n"]
    for c in cues:
        lines = list(c.lines)
        if c.speaker:
            lines[0] = f"<v {c.speaker}>" + lines[0].removeprefix(_label(c.speaker))
        blocks.append(f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)
