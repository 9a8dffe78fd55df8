"""A transcript as one string whose every character knows when it was said.

The NLP stages work on text (spaCy, sentence embeddings) but must report times. `TimedText` joins
the recognized words with single spaces and keeps each word's character span, so any span of the
text (an entity, a sentence) maps back to the words under it and so to their start and end times.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

SENTENCE_END = (".", "?", "!")
_CLOSERS = "\"')]”’"
MAX_SENTENCE_WORDS = 40  # unpunctuated speech is cut into pseudo-sentences of at most this many words
SENTENCE_PAUSE_S = 1.5  # a pause this long ends a sentence even without punctuation


@dataclass(frozen=True)
class TimedWord:
    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Sentence:
    text: str
    start: float
    end: float
    speaker: str | None  # the speaker of most of its words (by time); None when nobody was attributed
    first_word: int
    last_word: int  # inclusive


class TimedText:
    def __init__(self, words: Sequence[TimedWord]):
        self.words = [w for w in words if w.text.strip()]
        pieces, self._starts, self._ends, position = [], [], [], 0
        for word in self.words:
            piece = word.text.strip()
            pieces.append(piece)
            self._starts.append(position)
            self._ends.append(position + len(piece))
            position += len(piece) + 1
        self.text = " ".join(pieces)

    def word_span(self, char_start: int, char_end: int) -> tuple[int, int] | None:
        """Indices (first, last inclusive) of the words that overlap text[char_start:char_end]."""
        first = bisect_right(self._ends, char_start)
        last = bisect_left(self._starts, char_end) - 1
        return (first, last) if first <= last else None

    def time_span(self, char_start: int, char_end: int) -> tuple[float, float] | None:
        span = self.word_span(char_start, char_end)
        if span is None:
            return None
        return self.words[span[0]].start, self.words[span[1]].end

    def char_start(self, word_index: int) -> int:
        return self._starts[word_index]

    def char_end(self, word_index: int) -> int:
        return self._ends[word_index]

    def sentences(self) -> list[Sentence]:
        """Sentences from the recognizer's punctuation, also ended by a long pause or a length cap."""
        sentences, first = [], 0
        for n, word in enumerate(self.words):
            last_word = n == len(self.words) - 1
            ends = word.text.strip().rstrip(_CLOSERS).endswith(SENTENCE_END)
            paused = not last_word and self.words[n + 1].start - word.end >= SENTENCE_PAUSE_S
            if last_word or ends or paused or n - first + 1 >= MAX_SENTENCE_WORDS:
                sentences.append(self._sentence(first, n))
                first = n + 1
        return sentences

    def _sentence(self, first: int, last: int) -> Sentence:
        words = self.words[first : last + 1]
        talk: dict[str, float] = {}
        for word in words:
            if word.speaker is not None:
                talk[word.speaker] = talk.get(word.speaker, 0.0) + max(word.end - word.start, 1e-3)
        speaker = max(talk, key=lambda s: talk[s]) if talk else None
        text = self.text[self._starts[first] : self._ends[last]]
        return Sentence(text, words[0].start, words[-1].end, speaker, first, last)
