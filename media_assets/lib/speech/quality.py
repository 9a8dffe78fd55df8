"""Quality gates of the speech stages: how sure Whisper was of the words it wrote, and how well
each diarized turn matches its speaker. Both warn: a low score marks an episode to review."""

from __future__ import annotations

from dataclasses import dataclass

from media_assets.lib.core.lake import LakeStore
from media_assets.lib.core.quality import CheckOutcome, QualityCheck
from media_assets.lib.core.settings import knob


@dataclass(frozen=True)
class SpeechQuality:
    # clear speech scores 0.8-0.95 with tiny.en and base
    min_mean_word_probability: float = knob(0.5, "min_mean_word_probability", "transcript gate threshold")
    # clean turns score above 0.8 (see the diarization tests)
    min_mean_turn_confidence: float = knob(0.5, "min_mean_turn_confidence", "diarization gate threshold")


def check_transcript(lake: LakeStore, document: dict, settings) -> CheckOutcome:
    probabilities = [w["probability"] for s in document["segments"] for w in s["words"]]
    limit = settings.quality.min_mean_word_probability
    if document["empty_reason"]:
        return CheckOutcome(True, f"no speech to transcribe: {document['empty_reason']}", {"words": 0})
    if not probabilities:
        return CheckOutcome(False, "speech was found but no word was written", {"words": 0})
    mean = sum(probabilities) / len(probabilities)
    figures = {
        "words": len(probabilities),
        "mean_word_probability": round(mean, 4),
        "min_mean_word_probability": limit,
        "language": document["language"],
    }
    verdict = "at or above" if mean >= limit else "below"
    return CheckOutcome(
        mean >= limit, f"{len(probabilities)} words, mean probability {mean:.3f} {verdict} {limit}", figures
    )


def check_speakers(lake: LakeStore, document: dict, settings) -> CheckOutcome:
    turns = document["turns"]
    limit = settings.quality.min_mean_turn_confidence
    if not turns:
        return CheckOutcome(True, "no speech: no speaker turns", {"speakers": 0, "turns": 0})
    seconds = [t["end_time"] - t["start_time"] for t in turns]
    mean = sum(t["confidence_score"] * s for t, s in zip(turns, seconds)) / max(sum(seconds), 1e-9)
    figures = {
        "speakers": document["speaker_count"],
        "turns": len(turns),
        "mean_turn_confidence": round(mean, 4),
        "min_mean_turn_confidence": limit,
    }
    if document["speaker_count"] < 1:
        return CheckOutcome(False, "turns were found but no speaker", figures)
    verdict = "at or above" if mean >= limit else "below"
    summary = f"{document['speaker_count']} speaker(s), mean turn confidence {mean:.3f} {verdict} {limit}"
    return CheckOutcome(mean >= limit, summary, figures)


WORD_CONFIDENCE = QualityCheck(
    "word_confidence",
    "For an episode with speech: words were written, and their mean probability is at least the threshold.",
    blocking=False,
    evaluate=check_transcript,
)
SPEAKER_CONFIDENCE = QualityCheck(
    "speaker_confidence",
    "For an episode with speech: at least one speaker, and the turns' duration-weighted mean confidence is at "
    "least the threshold.",
    blocking=False,
    evaluate=check_speakers,
)
