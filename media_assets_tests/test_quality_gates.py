"""Quality gates: the independent loudness meter against known answers and pyloudnorm, the GOP and
contract gates on crafted and tampered outputs, and a deliberately bad output that fails its
blocking gate, stops the stages after it and is dead-lettered."""

from __future__ import annotations

import math

import dagster as dg
import numpy as np
import pyloudnorm
import pytest
import soundfile
from scipy import signal

from media_assets.demo import samples
from media_assets.lib.core import catalog, dead_letters, quality
from media_assets.lib.core.lake import LocalStore, document_key, table_key
from media_assets.lib.media import loudness
from media_assets.lib.media import quality as media_quality
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.stages import BY_NAME
from media_assets.resources import MediaResource, SpeechResource
from media_assets_tests.conftest import materialize_episode, register_episode


def _pyloudnorm(path) -> float:
    data, rate = soundfile.read(str(path))
    return pyloudnorm.Meter(rate).integrated_loudness(data)


@pytest.mark.parametrize(
    "make",
    [
        lambda folder: samples.tone(folder / "tone.wav", seconds=8.0, lufs=-23.0, sample_rate=48000),
        lambda folder: samples.tone(folder / "quiet.wav", seconds=5.0, lufs=-31.5, freq=1000.0, sample_rate=44100),
        lambda folder: samples.noise(folder / "pink.wav", seconds=12.0, lufs=-16.0),
        lambda folder: samples.speech(folder / "speech.wav", "Rivers carry water from the hills to the sea."),
    ],
    ids=["tone -23", "tone -31.5 at 44.1 kHz", "pink noise -16", "speech"],
)
def test_meter_agrees_with_pyloudnorm(tmp_path, make) -> None:
    path = make(tmp_path)
    assert media_quality.meter(path).integrated == pytest.approx(_pyloudnorm(path), abs=0.1)


def test_meter_reads_in_pieces_as_if_whole(tmp_path, monkeypatch) -> None:
    path = samples.noise(tmp_path / "pink.wav", seconds=20.0, lufs=-20.0)
    whole = media_quality.meter(path)
    monkeypatch.setattr(media_quality, "READ_SECONDS", 0.7)  # 29 pieces, none a multiple of 400 ms
    pieces = media_quality.meter(path)
    assert pieces.integrated == pytest.approx(whole.integrated, abs=1e-6)
    assert pieces.true_peak == pytest.approx(whole.true_peak, abs=0.01)


def test_true_peak_finds_the_peak_between_samples(tmp_path) -> None:
    """A 12 kHz sine at 48 kHz sampled 45 degrees off its crests: samples reach 0.707 of the
    amplitude, the waveform between them reaches all of it (+3.01 dB)."""
    rate, amplitude = 48000, 0.5
    n = np.arange(rate * 2)
    samples_ = amplitude * np.sin(2 * np.pi * 12000 * n / rate + math.pi / 4)
    path = tmp_path / "isp.wav"
    soundfile.write(str(path), np.repeat(samples_[:, None], 2, axis=1), rate, subtype="FLOAT")
    sample_peak = 20 * math.log10(np.abs(samples_).max())
    measured = media_quality.meter(path).true_peak
    assert sample_peak == pytest.approx(20 * math.log10(amplitude) - 3.01, abs=0.01)
    assert measured == pytest.approx(20 * math.log10(amplitude), abs=0.3)


def test_true_peak_skips_only_steps_that_cannot_hold_it(tmp_path) -> None:
    """Quiet speech, then loud: the meter oversamples only near the loud part, and finds the same
    true peak as oversampling every sample of the file."""
    speech, rate = soundfile.read(str(samples.speech(tmp_path / "s.wav", "Rivers carry water to the sea.")))
    programme = np.concatenate([speech * 0.05, speech, speech * 0.2])
    path = tmp_path / "programme.wav"
    soundfile.write(str(path), programme, rate, subtype="FLOAT")
    everywhere = np.abs(signal.resample_poly(programme, media_quality.OVERSAMPLING, 1, axis=0)).max()
    assert media_quality.meter(path).true_peak == pytest.approx(20 * math.log10(everywhere), abs=0.01)


@pytest.mark.parametrize("kind", ["noise", "steady tone"])
@pytest.mark.parametrize(
    "frames, first, stop",
    [(4000, 0, 4000), (4000, 5, 3990), (4000, 1000, 1001), (600_000, 70_000, 590_000), (130, 0, 129)],
    ids=["whole", "edges within the context", "one sample", "more rows than one product", "under a block"],
)
def test_oversampled_peak_is_the_interpolator_filtering(frames, first, stop, kind) -> None:
    """The blocked products (float32, then float64 for the rows near the peak) give what filtering
    with the interpolator in float64 gives, at the file's edges (silence beyond) and inside it; a
    steady tone puts every row near the peak."""
    if kind == "noise":
        audio = np.random.default_rng(frames + first).standard_normal((frames, 2)) / 3
    else:
        audio = np.stack([0.5 * np.sin(2 * np.pi * 997 / 48000 * np.arange(frames))] * 2, axis=1)
    audio = audio.astype(np.float32)  # as the meter reads 16-bit PCM
    out = signal.upfirdn(
        media_quality._INTERPOLATOR.astype(np.float64), audio.astype(np.float64), up=media_quality.OVERSAMPLING, axis=0
    )
    d, o = media_quality._DELAY, media_quality.OVERSAMPLING
    expected = np.abs(out[d + o * first : d + o * stop]).max()
    assert media_quality.oversampled_peak(audio, first, stop) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("frames, channels", [(4800, 2), (4850, 2), (4801, 1), (30, 6)])
def test_step_peaks_are_the_highest_absolute_sample_of_each_step(frames, channels) -> None:
    noise = np.random.default_rng(frames).standard_normal((frames, channels))
    noise[frames // 2, -1] = -9.0  # a negative peak counts by its size
    step = 480
    steps = -(-frames // step)
    expected = [np.abs(noise[n * step : (n + 1) * step]).max() for n in range(steps)]  # a partial last step too
    assert media_quality.step_peaks(noise, step).tolist() == expected


def test_digital_silence_has_no_loudness(tmp_path) -> None:
    path = tmp_path / "silence.wav"
    soundfile.write(str(path), np.zeros((48000 * 3, 2)), 48000, subtype="PCM_16")
    assert media_quality.meter(path) == media_quality.Loudness(None, None)


def _video_document(times: list[float], gop: float = 2.0, fps: float = 25.0) -> dict:
    return {"skipped": False, "keyframe_times": times, "rendition": {"gop_seconds": gop, "frame_rate": fps}}


@pytest.mark.parametrize(
    "times, passed",
    [
        ([0.0, 2.0, 4.0, 6.0], True),
        ([0.0, 2.0, 4.0, 5.2], True),  # the last GOP ends with the video
        ([0.0, 2.0, 3.1, 4.0, 6.0], False),  # a scene-cut keyframe
        ([0.0, 2.0, 6.0], False),  # a missing keyframe
        ([0.5, 2.5, 4.5], False),  # the video does not start on a keyframe
    ],
)
def test_fixed_gop_gate(times, passed) -> None:
    outcome = media_quality.check_gop(None, _video_document(times), MediaSettings())
    assert outcome.passed is passed, outcome.summary


def test_audio_only_passes_the_gop_gate() -> None:
    assert media_quality.check_gop(None, {"skipped": True}, MediaSettings()).passed


@pytest.fixture
def audio_episode(tmp_path, media) -> tuple[LocalStore, str]:
    lake = LocalStore(tmp_path / "lake")
    (outcome,) = ingest([media["speech"]], lake, MediaLimits(), lambda ids: None)
    for name in ("raw_media", "normalized_audio"):
        BY_NAME[name].run(lake, outcome.episode_id, MediaSettings())
    return lake, outcome.episode_id


def test_the_contract_gate_catches_an_output_changed_after_it_was_written(audio_episode) -> None:
    lake, episode_id = audio_episode
    document = BY_NAME["normalized_audio"].run(lake, episode_id, MediaSettings()).document
    assert quality.evaluate(quality.CONTRACT, lake, document, None).passed
    another_table = lake.get_bytes(table_key("episodes", episode_id))  # valid Parquet, other bytes
    lake.put_bytes(document["outputs"]["loudness"]["key"], another_table)
    outcome = quality.evaluate(quality.CONTRACT, lake, document, None)
    assert not outcome.passed and "loudness" in outcome.summary and "not as written" in outcome.summary


def _too_quiet(real_normalize, gain_db: float):
    """loudnorm as the stage runs it, then `gain_db` more: the file is off target while ffmpeg's own
    report, which the stage records, still says it is on target."""

    def normalize(src, dst, target, source_channels):
        report = real_normalize(src, dst, target, source_channels)
        data, rate = soundfile.read(str(dst), dtype="float64")
        soundfile.write(str(dst), data * 10 ** (gain_db / 20), rate, subtype="PCM_16")
        return report

    return normalize


@pytest.fixture
def registered_speech(dagster_env, media):
    return register_episode(dagster_env, media["speech"])


def test_audio_off_target_fails_its_blocking_gate_and_goes_no_further(registered_speech, monkeypatch) -> None:
    instance, resources, store, episode_id = registered_speech
    monkeypatch.setattr(loudness, "normalize", _too_quiet(loudness.normalize, gain_db=-6.0))
    result = materialize_episode(instance, resources, episode_id, ["raw_media", "normalized_audio", "transcript"])
    assert not result.success
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == "loudness")
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    figures = gate.metadata["figures"].value
    assert figures["integrated_lufs"] == pytest.approx(-29.0, abs=0.3)  # -23 as ffmpeg said, then -6 dB
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_media", "normalized_audio"}  # transcript never ran on the bad audio
    assert "transcript" not in {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    (record,) = dead_letters.list_records(store)
    assert (record["stage"], record["reason"], record["episode_id"]) == (
        "normalized_audio",
        "quality_gate_failed",
        episode_id,
    )
    con = catalog.connect(store)
    rows = con.execute(
        "SELECT check_name, passed, blocking FROM quality_checks WHERE stage = 'normalized_audio'"
    ).fetchall()
    assert sorted(rows) == [("contract", True, True), ("loudness", False, True)]

    # A later run that asks only for the next stage is refused too: the bad audio flows nowhere.
    later = materialize_episode(instance, resources, episode_id, ["transcript"])
    assert not later.success
    (failure,) = [e for e in later.all_events if e.is_step_failure]
    assert "normalized_audio failed its blocking quality gate(s) loudness" in failure.step_failure_data.error.message
    assert not store.exists(document_key("transcript", episode_id))
    assert [r["reason"] for r in dead_letters.list_records(store) if r["stage"] == "transcript"] == [
        "quality_gate_failed"
    ]


def test_a_warning_gate_fails_without_stopping_the_episode(registered_speech) -> None:
    """Word confidence warns: demanding near certainty fails it, and the stages after it still run."""
    instance, resources, store, episode_id = registered_speech
    strict = SpeechResource(asr_model="tiny.en", min_mean_word_probability=0.999)
    result = materialize_episode(
        instance,
        {**resources, "speech": strict},
        episode_id,
        ["raw_media", "normalized_audio", "transcript", "diarization", "speaker_transcript"],
    )
    assert result.success
    gates = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not gates["word_confidence"].passed
    assert gates["word_confidence"].severity == dg.AssetCheckSeverity.WARN
    figures = gates["word_confidence"].metadata["figures"].value
    assert figures["words"] >= 7 and 0.5 < figures["mean_word_probability"] < 0.999
    assert gates["speaker_confidence"].passed
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "speaker_transcript" in materialized
    assert dead_letters.list_records(store) == []


def test_an_unchanged_stage_reuses_its_gate_outcomes_and_new_limits_check_again(registered_speech, monkeypatch):
    instance, resources, store, episode_id = registered_speech
    assert materialize_episode(instance, resources, episode_id, ["raw_media", "normalized_audio"]).success
    record = quality.record_key("normalized_audio", episode_id)
    written = store.current_sha256(record)

    def must_not_read(path):
        raise AssertionError("the unchanged output was read again")

    monkeypatch.setattr(media_quality, "meter", must_not_read)
    again = materialize_episode(instance, resources, episode_id, ["normalized_audio"])
    assert again.success and all(e.passed for e in again.get_asset_check_evaluations())
    assert store.current_sha256(record) == written  # the lake is left as it was
    monkeypatch.undo()

    stricter = {**resources, "media": MediaResource(loudness_tolerance_lu=0.25)}
    checked = materialize_episode(instance, stricter, episode_id, ["normalized_audio"])
    gate = next(e for e in checked.get_asset_check_evaluations() if e.check_name == "loudness")
    assert gate.passed and gate.metadata["figures"].value["tolerance_lu"] == 0.25
    assert store.current_sha256(record) != written


def test_a_gate_that_cannot_read_fails_but_a_transient_error_is_retried(audio_episode) -> None:
    lake, episode_id = audio_episode
    document = BY_NAME["normalized_audio"].run(lake, episode_id, MediaSettings()).document

    def broken(lake, document, settings):
        raise ValueError("no such column")

    def flaky(lake, document, settings):
        raise ConnectionResetError(104, "Connection reset by peer")

    outcome = quality.evaluate(quality.QualityCheck("broken", "", True, broken), lake, document, None)
    assert not outcome.passed and outcome.summary == "ValueError: no such column"
    with pytest.raises(ConnectionResetError):
        quality.evaluate(quality.QualityCheck("flaky", "", True, flaky), lake, document, None)
