"""The speech stages as plain functions of (lake, episode id, settings): transcript,
diarization, and speaker_transcript (the two joined: who said which word, plus subtitles)."""

from __future__ import annotations

import dataclasses

from media_assets.lib.core.lake import LakeStore, media_key
from media_assets.lib.core.stage import StageResult, StageRun, read_document
from media_assets.lib.speech import asr, subtitles
from media_assets.lib.speech import diarizer as diarization
from media_assets.lib.speech.attribution import attribute
from media_assets.lib.speech.timed_text import TimedWord

CODE_VERSIONS = {"transcript": "1", "diarization": "1", "speaker_transcript": "1"}


def _audio_key(audio_doc: dict) -> str:
    return audio_doc["outputs"]["audio"]["key"]


def transcript(lake: LakeStore, episode_id: str, settings: asr.AsrSettings) -> StageResult:
    audio_doc = read_document(lake, "normalized_audio", episode_id)
    stage = StageRun(lake, "transcript", episode_id, CODE_VERSIONS["transcript"], dataclasses.asdict(settings),
                     {"normalized_audio": audio_doc["fingerprint"]})  # fmt: skip
    if done := stage.up_to_date():
        return done
    engine = asr.load_engine(settings)
    with lake.local_copy(_audio_key(audio_doc)) as wav:
        result = engine.transcribe(wav)
    return stage.finish({
        "engine": result.engine,
        "model": result.model,
        "language": result.language,
        "language_probability": result.language_probability,
        "empty_reason": result.empty_reason,
        "engine_metadata": result.metadata,
        "segments": [
            {
                "start": s.start, "end": s.end, "text": s.text, "avg_logprob": s.avg_logprob,
                "no_speech_prob": s.no_speech_prob,
                "words": [{"start": w.start, "end": w.end, "text": w.text, "probability": w.probability}
                          for w in s.words],
            }
            for s in result.segments
        ],
    })  # fmt: skip


def diarization_stage(
    lake: LakeStore, episode_id: str, settings: diarization.DiarizationSettings, num_speakers: int | None
) -> StageResult:
    audio_doc = read_document(lake, "normalized_audio", episode_id)
    config = {**dataclasses.asdict(settings), "episode_num_speakers": num_speakers}
    stage = StageRun(lake, "diarization", episode_id, CODE_VERSIONS["diarization"], config,
                     {"normalized_audio": audio_doc["fingerprint"]})  # fmt: skip
    if done := stage.up_to_date():
        return done
    with lake.local_copy(_audio_key(audio_doc)) as wav:
        result = diarization.diarize(wav, settings, num_speakers=num_speakers)
    turns = [
        {"speaker_id": t.speaker_id, "start_time": t.start, "end_time": t.end, "confidence_score": t.confidence}
        for t in result.turns
    ]
    stage.put_table("speaker_turns", [{"episode_id": episode_id, "turn_index": n, **t} for n, t in enumerate(turns)])
    return stage.finish({
        "pipeline": result.pipeline,
        "confidence_method": result.confidence_method,
        "speaker_count": result.speaker_count,
        "engine_metadata": result.metadata,
        "turns": turns,
    })  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Turn:
    speaker_id: str
    start: float
    end: float


def _turns(turns_doc: dict) -> list[_Turn]:
    return sorted((_Turn(t["speaker_id"], t["start_time"], t["end_time"]) for t in turns_doc["turns"]),
                  key=lambda t: t.start)  # fmt: skip


def attributed_words(text_doc: dict, turns_doc: dict) -> list[TimedWord]:
    """The transcript's words, each with the speaker who talks over most of it."""
    words = [w for s in text_doc["segments"] for w in s["words"]]
    speakers = attribute([_Turn("", w["start"], w["end"]) for w in words], _turns(turns_doc))
    return [TimedWord(w["start"], w["end"], w["text"], speaker) for w, speaker in zip(words, speakers, strict=True)]


def speaker_transcript(lake: LakeStore, episode_id: str) -> StageResult:
    """Attribute every word and segment to a speaker; write both tables and SRT/WebVTT files."""
    text_doc = read_document(lake, "transcript", episode_id)
    turns_doc = read_document(lake, "diarization", episode_id)
    stage = StageRun(lake, "speaker_transcript", episode_id, CODE_VERSIONS["speaker_transcript"], {},
                     {"transcript": text_doc["fingerprint"], "diarization": turns_doc["fingerprint"]})  # fmt: skip
    if done := stage.up_to_date():
        return done
    turns = _turns(turns_doc)
    segments = text_doc["segments"]
    words = [(n, w) for n, s in enumerate(segments) for w in s["words"]]
    segment_speakers = attribute([_Turn("", s["start"], s["end"]) for s in segments], turns)
    timed = attributed_words(text_doc, turns_doc)
    word_speakers = [w.speaker for w in timed]

    stage.put_table("transcript_segments", [
        {"episode_id": episode_id, "segment_index": n, "start_time": s["start"], "end_time": s["end"],
         "text": s["text"].strip(), "speaker_id": speaker, "language": text_doc["language"],
         "avg_logprob": s.get("avg_logprob"), "no_speech_prob": s.get("no_speech_prob")}
        for n, (s, speaker) in enumerate(zip(segments, segment_speakers, strict=True))
    ])  # fmt: skip
    stage.put_table("transcript_words", [
        {"episode_id": episode_id, "segment_index": n, "word_index": i, "start_time": w["start"],
         "end_time": w["end"], "word": w["text"].strip(), "probability": w["probability"], "speaker_id": speaker}
        for i, ((n, w), speaker) in enumerate(zip(words, word_speakers, strict=True))
    ])  # fmt: skip
    cues = subtitles.build_cues(timed)
    for name, text in (("srt", subtitles.to_srt(cues)), ("vtt", subtitles.to_webvtt(cues))):
        key = media_key("subtitles", episode_id, f"subtitles.{name}")
        with lake.scratch_dir() as tmp:
            (tmp / name).write_text(text, encoding="utf-8")
            stage.put_file(name, key, tmp / name)

    speakers: dict[str, dict] = {}
    for turn in turns:
        entry = speakers.setdefault(turn.speaker_id, {"talk_seconds": 0.0, "words": 0})
        entry["talk_seconds"] = round(entry["talk_seconds"] + turn.end - turn.start, 3)
    for speaker in word_speakers:
        if speaker is not None:
            speakers.setdefault(speaker, {"talk_seconds": 0.0, "words": 0})["words"] += 1
    return stage.finish({
        "speakers": speakers,
        "unattributed_words": word_speakers.count(None),
        "cue_count": len(cues),
    })  # fmt: skip
