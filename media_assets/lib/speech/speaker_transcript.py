"""The speaker_transcript stage: `speaker_transcript` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses

from media_assets.lib.core.lake import LakeStore, media_key
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.speech import subtitles
from media_assets.lib.speech.attribution import attribute
from media_assets.lib.speech.timed_text import TimedWord


@dataclasses.dataclass(frozen=True)
class _Turn:
    speaker_id: str
    start: float
    end: float


def _turns(turns_doc: dict) -> list[_Turn]:
    return sorted(
        (_Turn(t["speaker_id"], t["start_time"], t["end_time"]) for t in turns_doc["turns"]), key=lambda t: t.start
    )


def attributed_words(text_doc: dict, turns_doc: dict) -> list[TimedWord]:
    """The transcript's words, each with the speaker who talks over most of it."""
    words = [w for s in text_doc["segments"] for w in s["words"]]
    speakers = attribute([_Turn("", w["start"], w["end"]) for w in words], _turns(turns_doc))
    return [TimedWord(w["start"], w["end"], w["text"], speaker) for w, speaker in zip(words, speakers, strict=True)]


@stage(
    upstream=("transcript", "diarization"),
    code_version="1",
    compute_class="cpu-metadata",
    kinds=("parquet",),
    tables=("transcript_segments", "transcript_words"),
)
def speaker_transcript(lake: LakeStore, episode_id: str) -> StageResult:
    """Each word and segment attributed to the speaker who talks over most of it; speaker-labelled SRT and
    WebVTT subtitles."""
    run = StageRun(lake, speaker_transcript, episode_id, {})
    if done := run.up_to_date():
        return done
    text_doc, turns_doc = run.upstream["transcript"], run.upstream["diarization"]
    turns = _turns(turns_doc)
    segments = text_doc["segments"]
    words = [(n, w) for n, s in enumerate(segments) for w in s["words"]]
    segment_speakers = attribute([_Turn("", s["start"], s["end"]) for s in segments], turns)
    timed = attributed_words(text_doc, turns_doc)
    word_speakers = [w.speaker for w in timed]

    run.put_table(
        "transcript_segments",
        [
            {
                "episode_id": episode_id,
                "segment_index": n,
                "start_time": s["start"],
                "end_time": s["end"],
                "text": s["text"].strip(),
                "speaker_id": speaker,
                "language": text_doc["language"],
                "avg_logprob": s.get("avg_logprob"),
                "no_speech_prob": s.get("no_speech_prob"),
            }
            for n, (s, speaker) in enumerate(zip(segments, segment_speakers, strict=True))
        ],
    )
    run.put_table(
        "transcript_words",
        [
            {
                "episode_id": episode_id,
                "segment_index": n,
                "word_index": i,
                "start_time": w["start"],
                "end_time": w["end"],
                "word": w["text"].strip(),
                "probability": w["probability"],
                "speaker_id": speaker,
            }
            for i, ((n, w), speaker) in enumerate(zip(words, word_speakers, strict=True))
        ],
    )
    cues = subtitles.build_cues(timed)
    for name, text in (("srt", subtitles.to_srt(cues)), ("vtt", subtitles.to_webvtt(cues))):
        key = media_key("subtitles", episode_id, f"subtitles.{name}")
        with lake.scratch_dir() as tmp:
            (tmp / name).write_text(text, encoding="utf-8")
            run.put_file(name, key, tmp / name)

    speakers: dict[str, dict] = {}
    for turn in turns:
        entry = speakers.setdefault(turn.speaker_id, {"talk_seconds": 0.0, "words": 0})
        entry["talk_seconds"] = round(entry["talk_seconds"] + turn.end - turn.start, 3)
    for speaker in word_speakers:
        if speaker is not None:
            speakers.setdefault(speaker, {"talk_seconds": 0.0, "words": 0})["words"] += 1
    return run.finish({"speakers": speakers, "unattributed_words": word_speakers.count(None), "cue_count": len(cues)})
