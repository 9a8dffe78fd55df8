"""Speaker diarization with the real offline models, scored against known speaker turns."""

from __future__ import annotations

import os
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from media_assets.demo import samples
from media_assets.lib.speech import audio
from media_assets.lib.speech.diarizer import (
    CONFIDENCE_METHOD,
    LOCAL_PIPELINE,
    PRODUCTION_PIPELINE,
    DiarizationSettings,
    ModelUnavailable,
    _link_speakers,
    diarize,
    load_pipeline,
)

HOST = ("en-us", 35)
GUEST = ("en+f3", 75)
INTRUDER = ("en+whisper", 50)  # a voice unlike both others
DIALOGUE = [
    (*HOST, "Welcome back to the show. Today we talk about loudness."),
    (*GUEST, "Thanks for having me, it is great to be here."),
    (*HOST, "So why do some episodes still sound so quiet?"),
    (*GUEST, "Often nobody normalized them before publishing."),
    (*HOST, "Can a pipeline fix that automatically?"),
    (*GUEST, "Yes, it measures every file and corrects the level."),
]
INTERVIEW = [  # about 2.4 minutes
    (*(HOST if i % 2 == 0 else GUEST), line)
    for i, line in enumerate(
        [
            "Welcome back to the show. Today we talk about loudness and why it matters.",
            "Thanks for having me, it is great to be here again.",
            "So why do some episodes still sound so quiet?",
            "Often nobody normalized them before publishing, so every file has its own level.",
            "Can a pipeline fix that automatically?",
            "Yes, it measures every file and corrects the level to a common target.",
            "What target do most podcasts use these days?",
            "Around minus sixteen loudness units for stereo, a little lower for mono.",
            "And what about music that is mixed much louder than speech?",
            "Then the loudest parts are limited, so the peaks stay below full scale.",
            "Does the listener notice any of this?",
            "Only when it is missing. Nobody likes to reach for the volume knob.",
            "Let us talk about transcripts. How are they made?",
            "A speech model listens to the audio in windows and writes down every word.",
            "Is it accurate enough for names and numbers?",
            "Mostly, but names of people and places are still the hardest part.",
            "And how do you know who said what?",
            "That is diarization. It groups the voice segments by speaker.",
            "Without being told how many people are talking?",
            "Yes, it clusters voice embeddings and finds the count on its own.",
            "What happens when two people talk at the same time?",
            "The model can mark overlapping speech, though it is less precise there.",
            "How long can an episode be before this gets difficult?",
            "Several hours are fine if memory is managed carefully along the way.",
            "Where do the files live once they are processed?",
            "In a lake of plain files, with a catalog that records every version.",
            "What if a file arrives twice?",
            "Its checksum is already known, so the second copy is simply skipped.",
            "And a broken file?",
            "It goes to a dead letter queue with the reason, and someone can replay it later.",
            "That sounds like a good topic for our next episode.",
            "I would be happy to come back and explain it in detail.",
            "Thank you for joining us today, this was very helpful.",
            "My pleasure. Goodbye to everyone listening.",
        ]
    )
]


def _to_48k_stereo(src: Path, dst: Path) -> Path:
    """The pipeline's normalized audio format: 48 kHz 16-bit PCM WAV (stereo, to test the downmix)."""
    cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(src)]
    subprocess.run([*cmd, "-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le", str(dst)], check=True)
    return dst


def _der(truth: list[samples.SpokenTurn], turns) -> float:
    reference, hypothesis = Annotation(), Annotation()
    for turn in truth:
        reference[Segment(turn.start, turn.end)] = turn.speaker
    for turn in turns:
        hypothesis[Segment(turn.start, turn.end)] = turn.speaker_id
    uem = Timeline([Segment(0, truth[-1].end)])
    return DiarizationErrorRate(collar=0.25)(reference, hypothesis, uem=uem)


@pytest.fixture(scope="module")
def conversation(tmp_path_factory) -> tuple[Path, list[samples.SpokenTurn]]:
    folder = tmp_path_factory.mktemp("diarization")
    truth = samples.conversation(folder / "espeak.wav", DIALOGUE)
    return _to_48k_stereo(folder / "espeak.wav", folder / "conversation.wav"), truth


@pytest.fixture(scope="module")
def interview(tmp_path_factory) -> tuple[Path, list[samples.SpokenTurn]]:
    folder = tmp_path_factory.mktemp("interview")
    truth = samples.conversation(folder / "espeak.wav", INTERVIEW)
    return _to_48k_stereo(folder / "espeak.wav", folder / "interview.wav"), truth


@pytest.fixture(scope="module")
def unprompted(conversation):
    """The conversation diarized without being told the number of speakers."""
    return diarize(conversation[0], DiarizationSettings())


def test_two_voices_are_found_without_being_told(conversation, unprompted):
    _, truth = conversation
    assert unprompted.speaker_count == 2
    assert len({turn.speaker_id for turn in unprompted.turns}) == 2
    assert _der(truth, unprompted.turns) <= 0.10
    assert [turn.start for turn in unprompted.turns] == sorted(turn.start for turn in unprompted.turns)
    assert unprompted.pipeline == LOCAL_PIPELINE
    assert unprompted.confidence_method == CONFIDENCE_METHOD
    assert unprompted.metadata["parameters"]["clustering"]["method"] == "centroid"


def test_clean_turns_have_high_confidence(unprompted):
    assert all(0.8 < turn.confidence <= 1.0 for turn in unprompted.turns)


def test_known_speaker_count(conversation):
    path, truth = conversation
    result = diarize(path, DiarizationSettings(num_speakers=2))
    assert result.speaker_count == 2
    assert result.metadata["num_speakers"] == 2
    assert _der(truth, result.turns) <= 0.10


def test_a_voice_forced_into_another_speaker_gets_the_lowest_confidence(tmp_path):
    """Three voices, told there are two: the intruder's turn joins a cluster it does not match."""
    dialogue = [*DIALOGUE[:3], (*INTRUDER, "Sorry to interrupt, this is a message from our sponsor."), *DIALOGUE[3:5]]
    truth = samples.conversation(tmp_path / "espeak.wav", dialogue)
    path = _to_48k_stereo(tmp_path / "espeak.wav", tmp_path / "three.wav")
    result = diarize(path, DiarizationSettings(num_speakers=2))
    assert result.speaker_count == 2
    intruder = truth[3]

    def overlap(turn):
        return min(turn.end, intruder.end) - max(turn.start, intruder.start)

    intruding = max(result.turns, key=overlap)
    others = [turn.confidence for turn in result.turns if overlap(turn) <= 0]
    assert overlap(intruding) > 0.8 * (intruder.end - intruder.start)
    assert intruding.confidence < min(others)


def test_a_short_clip_of_one_voice(tmp_path):
    """Shorter than the pipeline's 10 s window."""
    espeak = samples.speech(tmp_path / "espeak.wav", "Just one short sentence from a single voice.")
    result = diarize(_to_48k_stereo(espeak, tmp_path / "short.wav"), DiarizationSettings())
    assert result.speaker_count == 1
    assert 0 <= result.turns[0].start < result.turns[-1].end <= result.metadata["duration_s"] < 5


def test_silence_gives_no_turns(tmp_path):
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(b"\0" * (48000 * 2 * 2 * 8))
    result = diarize(path, DiarizationSettings())
    assert result.turns == ()
    assert result.speaker_count == 0
    windowed = diarize(path, DiarizationSettings(window_seconds=3))
    assert (windowed.turns, windowed.speaker_count, windowed.metadata["windows"]) == ((), 0, 3)


def test_a_long_file_is_read_in_windows_cut_at_quiet_points(interview):
    path, truth = interview
    windows = list(audio.windows(path, 3))
    starts = [start for start, _ in windows]
    lengths = [len(samples) / 16000 for _, samples in windows]
    assert starts == pytest.approx(np.cumsum([0, *lengths[:-1]]))
    assert sum(lengths) == pytest.approx(truth[-1].end, abs=0.01)
    for k in range(1, 3):  # at the last silent 100 ms before k/3 of the file (a pause within or between turns)
        nominal = k * sum(lengths) / 3
        assert nominal - 5 < starts[k] <= nominal
        assert np.abs(np.concatenate([windows[k - 1][1][-800:], windows[k][1][:800]])).max() < 1e-3


def test_a_long_file_is_diarized_in_windows_whose_speakers_are_linked(interview):
    path, truth = interview
    windowed = diarize(path, DiarizationSettings(window_seconds=50))
    whole = diarize(path, DiarizationSettings())
    assert (windowed.metadata["windows"], whole.metadata["windows"]) == (3, 1)
    assert windowed.speaker_count == 2
    assert _der(truth, windowed.turns) <= 0.10
    assert abs(_der(truth, windowed.turns) - _der(truth, whole.turns)) <= 0.02
    assert windowed.metadata["duration_s"] == whole.metadata["duration_s"]

    def speaker(true_turn):  # the speaker found for most of a true turn
        return max(windowed.turns, key=lambda turn: min(turn.end, true_turn.end) - max(turn.start, true_turn.start))

    # The same ids in every window, numbered in order of first appearance.
    assert {(turn.speaker, speaker(turn).speaker_id) for turn in truth} == {
        ("en-us/35", "SPEAKER_00"),
        ("en+f3/75", "SPEAKER_01"),
    }
    assert all(0.8 < turn.confidence <= 1.0 for turn in windowed.turns)


def _partition(clusters) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(clusters == cluster).tolist()) for cluster in set(clusters.tolist())}


def test_speakers_of_windows_are_linked_by_their_centroids():
    """Centroids of three voices, each as seen in a few windows (a little noise, any length), and a
    zero centroid: pyannote's for a speaker found without an embedding."""
    rng = np.random.default_rng(0)
    a, b, other = (vector / np.linalg.norm(vector) for vector in rng.standard_normal((3, 192)))
    c = 0.6 * a + 0.8 * other  # 0.89 from a (as unit vectors), beyond the threshold, but nearer than b (1.4)
    voices = [a, b, b, a, a, c, b, a]
    noise = 0.01 * rng.standard_normal((len(voices), 192))
    centroids = np.array(voices) + noise
    centroids *= rng.uniform(0.5, 20, (len(voices), 1))
    centroids = np.vstack([centroids, np.zeros(192)])

    found = _partition(_link_speakers(centroids, threshold=0.70))
    assert found == {frozenset({0, 3, 4, 7}), frozenset({1, 2, 6}), frozenset({5}), frozenset({8})}
    two = {frozenset({0, 3, 4, 5, 7}), frozenset({1, 2, 6})}
    assert _partition(_link_speakers(centroids[:-1], threshold=0.70, num_speakers=2)) == two
    assert _partition(_link_speakers(centroids[:-1], threshold=0.70, max_speakers=2)) == two
    assert len(_partition(_link_speakers(centroids[:-1], threshold=0.70, min_speakers=4))) == 4


def test_production_pipeline_fails_fast_offline_and_says_how_to_provide_it(monkeypatch):
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by conftest before huggingface_hub is imported
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    import pyannote.audio  # noqa: F401  (its import takes about 10 s and is not what is timed here)

    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        load_pipeline(DiarizationSettings(pipeline=PRODUCTION_PIPELINE))
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert caught.value.reason == "model_unavailable"
    assert PRODUCTION_PIPELINE in message
    assert "HF_HUB_OFFLINE" in message and "HF_TOKEN" in message
    assert "local directory" in message and "'local'" in message


def test_a_missing_or_empty_pipeline_directory_is_reported(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_pipeline(DiarizationSettings(pipeline=str(tmp_path / "no-such-pipeline")))
    with pytest.raises(ModelUnavailable, match="config.yaml"):
        load_pipeline(DiarizationSettings(pipeline=str(tmp_path)))


def test_pipeline_is_loaded_once_per_process():
    first = load_pipeline(DiarizationSettings())
    assert load_pipeline(DiarizationSettings(num_speakers=3, min_speakers=1, max_speakers=4)) is first


def test_telemetry_is_off():
    from pyannote.audio.telemetry.metrics import is_metrics_enabled

    assert not is_metrics_enabled()
