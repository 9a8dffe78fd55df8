"""The speech stages end to end on the lake with real models: a two-voice conversation with
known text and turns comes out as speaker-attributed words, talk time per speaker and subtitles."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import soundfile

from media_assets.demo import samples
from media_assets.lib.core import catalog
from media_assets.lib.core.lake import LocalStore, media_key
from media_assets.lib.media.embedded import parse_srt
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.speech import asr
from media_assets.lib.speech.diarizer import DiarizationSettings
from media_assets.lib.speech.settings import SpeechSettings
from media_assets.lib.speech.subtitles import MAX_CUE_SECONDS, MAX_LINE_CHARS, MAX_LINES
from media_assets.lib.stages import BY_NAME

TURNS = [
    ("en-us", 35, "Welcome to the show. Today we talk about rivers and the fish that live in them."),
    ("en+f3", 75, "Thank you for having me. Salmon swim upstream every autumn to lay their eggs."),
    ("en-us", 35, "How far do they travel before they reach the spawning grounds?"),
    ("en+f3", 75, "Some of them swim more than a thousand kilometres against the current."),
]
ASR = asr.AsrSettings(model="tiny.en")
DIARIZATION = DiarizationSettings()


def run_speech(lake: LocalStore, episode_id: str) -> dict:
    BY_NAME["raw_media"].run(lake, episode_id, MediaSettings())
    BY_NAME["normalized_audio"].run(lake, episode_id, MediaSettings())
    return {
        "transcript": BY_NAME["transcript"].run(lake, episode_id, SpeechSettings(asr=ASR)),
        "diarization": BY_NAME["diarization"].run(lake, episode_id, SpeechSettings(diarization=DIARIZATION)),
        "speaker_transcript": BY_NAME["speaker_transcript"].run(lake, episode_id),
    }


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    truth = samples.conversation(folder / "conversation.wav", TURNS, gap=0.6)
    lake = LocalStore(folder / "lake")
    (outcome,) = ingest([folder / "conversation.wav"], lake, MediaLimits(), lambda ids: None)
    results = run_speech(lake, outcome.episode_id)
    return {"truth": truth, "lake": lake, "episode_id": outcome.episode_id, "results": results}


def test_words_are_recognized_and_attributed_to_the_right_speaker(conversation) -> None:
    lake, truth = conversation["lake"], conversation["truth"]
    con = catalog.connect(lake)
    words = con.execute(
        "select start_time, end_time, word, speaker_id from transcript_words order by word_index"
    ).fetchall()
    hypothesis = " ".join(w[2] for w in words)
    assert asr.wer(" ".join(t.text for t in truth), hypothesis) <= 0.25

    def true_speaker(start: float, end: float) -> str:
        middle = (start + end) / 2
        return min(
            truth, key=lambda t: 0 if t.start <= middle <= t.end else min(abs(middle - t.start), abs(middle - t.end))
        ).speaker

    pairs = [(true_speaker(s, e), speaker) for s, e, _, speaker in words]
    # Diarization labels are arbitrary: map each label to the true speaker it mostly covers.
    labels = {label for _, label in pairs if label}
    mapping = {label: Counter(t for t, other in pairs if other == label).most_common(1)[0][0] for label in labels}
    correct = sum(mapping.get(label) == t for t, label in pairs)
    assert correct / len(pairs) >= 0.9
    assert len(set(mapping.values())) == 2


def test_talk_time_per_speaker_matches_the_truth(conversation) -> None:
    con = catalog.connect(conversation["lake"])
    talk = dict(con.execute("select speaker_id, sum(end_time - start_time) from speaker_turns group by 1").fetchall())
    assert len(talk) == 2
    truth = Counter()
    for turn in conversation["truth"]:
        truth[turn.speaker] += turn.end - turn.start
    assert sorted(talk.values()) == pytest.approx(sorted(truth.values()), abs=1.5)


def test_subtitles_parse_and_respect_the_cue_limits(conversation) -> None:
    lake, episode_id = conversation["lake"], conversation["episode_id"]
    srt = lake.get_bytes(media_key("subtitles", episode_id, "subtitles.srt")).decode()
    vtt = lake.get_bytes(media_key("subtitles", episode_id, "subtitles.vtt")).decode()
    cues = parse_srt(srt)
    assert len(cues) >= len(TURNS)
    for block in srt.strip().split("\n\n"):
        lines = block.splitlines()[2:]
        assert 1 <= len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE_CHARS for line in lines)
    assert all(end - start <= MAX_CUE_SECONDS for start, end, _ in cues)
    assert all(text.split(":")[0].startswith("SPEAKER") for _, _, text in cues)
    assert vtt.startswith("WEBVTT") and vtt.count("<v SPEAKER") == len(cues)


def test_rerun_is_skipped(conversation) -> None:
    again = run_speech(conversation["lake"], conversation["episode_id"])
    assert all(result.skipped for result in again.values())


def test_silence_gives_an_empty_transcript_and_no_speakers(tmp_path) -> None:
    silent = tmp_path / "silence.wav"
    soundfile.write(silent, np.zeros(48000 * 5), 48000, subtype="PCM_16")
    lake = LocalStore(tmp_path / "lake")
    (outcome,) = ingest([silent], lake, MediaLimits(), lambda ids: None)
    results = run_speech(lake, outcome.episode_id)
    text = results["transcript"].document
    assert text["segments"] == [] and text["empty_reason"]
    assert results["diarization"].document["turns"] == []
    assert results["speaker_transcript"].document["cue_count"] == 0
    con = catalog.connect(lake)
    assert con.execute("select count(*) from transcript_words").fetchall() == [(0,)]
