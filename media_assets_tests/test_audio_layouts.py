"""Every accepted channel layout and sample format normalizes through the real stages: 5.1 and 7.1
are downmixed to stereo before measuring, 8 kHz mu-law and 96 kHz float are resampled, and of two
audio tracks the first is used; which one, and how it was downmixed, is recorded in `loudness`.
Loudness is checked with an independent meter (pyloudnorm) and 4x-oversampled true peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from media_assets.demo import samples
from media_assets.lib.core.stage import read_table
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.stages import BY_NAME
from media_assets_tests.test_loudness import assert_delivery_format, integrated_lufs, true_peak_dbtp

CASES = {
    # name: (file name, layouts, sample rate, codec arguments, channels out, downmixed)
    "5.1 AC-3 in Matroska": ("surround.mkv", ("5.1",), 48000, ("-c:a", "ac3", "-b:a", "384k"), 2, True),
    "7.1 PCM WAVE_FORMAT_EXTENSIBLE": ("surround71.wav", ("7.1",), 48000, ("-c:a", "pcm_s16le"), 2, True),
    "8 kHz mu-law": ("phone.wav", ("mono",), 8000, ("-c:a", "pcm_mulaw"), 1, False),
    "96 kHz float": ("studio.wav", ("stereo",), 96000, ("-c:a", "pcm_f32le"), 2, False),
    "two tracks, mono first": ("two_tracks.mkv", ("mono", "5.1"), 48000, ("-c:a", "flac"), 1, False),
}


def normalize_upload(lake, upload: Path) -> tuple[Path, dict]:
    (outcome,) = ingest([upload], lake, MediaLimits(), lambda ids: None)
    assert outcome.status == "registered", outcome
    BY_NAME["raw_media"].run(lake, outcome.episode_id, MediaSettings())
    result = BY_NAME["normalized_audio"].run(lake, outcome.episode_id, MediaSettings())
    (row,) = read_table(lake, "loudness", outcome.episode_id)
    return lake.root / result.document["outputs"]["audio"]["key"], row


@pytest.mark.parametrize("case", CASES)
def test_layout_normalizes_to_target(tmp_path: Path, lake, case: str) -> None:
    name, layouts, rate, codec, channels_out, downmixed = CASES[case]
    upload = samples.channel_tones(tmp_path / name, layouts, sample_rate=rate, codec_args=codec)
    wav, row = normalize_upload(lake, upload)

    assert integrated_lufs(wav) == pytest.approx(-23.0, abs=0.5)
    assert true_peak_dbtp(wav) <= -1.0
    assert_delivery_format(wav)
    assert soundfile.info(wav).channels == row["channels"] == channels_out
    assert row["duration_s"] == pytest.approx(6.0, abs=0.05)
    assert row["normalization_type"] == "linear"
    assert row["source_channels"] == samples.CHANNEL_COUNTS[layouts[0]]
    assert row["source_audio_streams"] == len(layouts) and row["source_stream_index"] == 0
    assert (row["downmix"] is not None) == downmixed


def test_downmix_uses_the_standard_matrix(tmp_path: Path, lake) -> None:
    """Front-left lands in the left channel only; the centre lands equally in both; the LFE is dropped."""
    upload = samples.channel_tones(tmp_path / "surround.mkv", ("5.1",), codec_args=("-c:a", "flac"))
    wav, row = normalize_upload(lake, upload)
    assert row["source_channel_layout"] == "5.1" and row["downmix"] == "standard stereo matrix"
    audio, rate = soundfile.read(wav)
    spectrum = np.abs(np.fft.rfft(audio, axis=0))
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)

    def level(hz: float) -> np.ndarray:
        return spectrum[np.argmin(np.abs(freqs - hz))]

    front_left, front_right, centre, lfe = level(220), level(330), level(440), level(550)  # channel order FL FR FC LFE
    assert front_left[0] > 100 * front_left[1] and front_right[1] > 100 * front_right[0]
    assert centre[0] == pytest.approx(centre[1], rel=0.01)
    assert centre[0] == pytest.approx(front_left[0] * 10 ** (-3 / 20), rel=0.05)  # centre at -3 dB
    assert max(lfe) < front_left[0] / 100
