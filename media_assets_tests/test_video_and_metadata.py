"""Video normalization (fixed closed GOP, faststart, H.264/AAC) and metadata extraction."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from media_assets.demo import samples
from media_assets.lib.core.lake import media_key
from media_assets.lib.core.stage import read_document
from media_assets.lib.media import media_tools, video
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.stages import BY_NAME


def register(path: Path, lake) -> str:
    (outcome,) = ingest([path], lake, MediaLimits(), lambda ids: None)
    assert outcome.status == "registered", outcome
    return outcome.episode_id


def normalize_all(lake, episode_id: str, settings: video.VideoSettings):
    BY_NAME["raw_media"].run(lake, episode_id, MediaSettings())
    BY_NAME["normalized_audio"].run(lake, episode_id, MediaSettings())
    return BY_NAME["normalized_video"].run(lake, episode_id, MediaSettings(video=settings))


@pytest.mark.parametrize("gop_seconds, rate", [(2.0, 25), (1.0, 30)])
def test_keyframes_are_evenly_spaced_at_the_gop(tmp_path, lake, gop_seconds, rate) -> None:
    src = samples.video_with_subtitles(tmp_path / "clip.mp4", seconds=9.0, rate=rate)
    episode_id = register(src, lake)
    result = normalize_all(lake, episode_id, video.VideoSettings(gop_seconds=gop_seconds))

    with lake.local_copy(media_key("normalized_video", episode_id, "video.mp4")) as mp4:
        keyframes = video.keyframe_times(mp4)
        probe = media_tools.probe(mp4)
        assert video.is_faststart(mp4)
    expected = [round(n * gop_seconds, 6) for n in range(int(9.0 / gop_seconds) + 1) if n * gop_seconds < 9.0]
    assert keyframes == pytest.approx(expected, abs=1.0 / rate)
    gaps = [b - a for a, b in zip(keyframes, keyframes[1:])]
    assert all(gap == pytest.approx(gop_seconds, abs=1.0 / rate) for gap in gaps)

    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert streams["audio"]["codec_name"] == "aac"
    assert int(streams["audio"]["sample_rate"]) == 48000
    assert "subtitle" not in streams
    rendition = result.document["rendition"]
    assert rendition["keyframe_count"] == len(expected)
    assert rendition["faststart"] is True


def test_audio_only_episode_skips_video_without_failing(lake, media) -> None:
    episode_id = register(media["tone"], lake)
    result = normalize_all(lake, episode_id, video.VideoSettings())
    assert result.document["skipped"] is True
    assert not lake.list_keys("media/normalized_video")
    assert read_document(lake, "normalized_video", episode_id)["outputs"] == {}


def test_top_level_atoms_reads_box_order(tmp_path) -> None:
    boxes = b"".join(
        (8 + n).to_bytes(4, "big") + kind + b"x" * n for kind, n in [(b"ftyp", 12), (b"moov", 20), (b"mdat", 4)]
    )
    path = tmp_path / "boxes.mp4"
    path.write_bytes(boxes)
    assert video.top_level_atoms(path) == ["ftyp", "moov", "mdat"]
    assert video.is_faststart(path)


def test_id3_tags_container_tags_exif_and_captions(lake, media) -> None:
    mp3_episode = register(media["mp3"], lake)
    video_episode = register(media["video"], lake)
    for episode_id in (mp3_episode, video_episode):
        BY_NAME["raw_media"].run(lake, episode_id, MediaSettings())
        BY_NAME["media_metadata"].run(lake, episode_id)

    mp3_doc = read_document(lake, "media_metadata", mp3_episode)
    assert mp3_doc["id3"]["TIT2"] == "Known Title"
    assert mp3_doc["id3"]["TPE1"] == "Known Artist"
    assert mp3_doc["id3"]["TALB"] == samples.DEFAULT_TAGS["album"]
    assert mp3_doc["caption_streams"] == []

    video_doc = read_document(lake, "media_metadata", video_episode)
    assert video_doc["exif"]["creation_time"].startswith("2026-01-02T03:04:05")
    assert video_doc["exif"]["latitude"] == pytest.approx(48.8577)
    assert video_doc["exif"]["longitude"] == pytest.approx(2.2950)
    assert video_doc["container_tags"]["title"] == samples.VIDEO_METADATA["title"]
    (stream,) = video_doc["caption_streams"]
    assert stream["extracted"] and stream["cue_count"] == len(samples.DEFAULT_CUES)
    assert stream["language"] == "eng"


def test_srt_parsing_strips_markup_and_keeps_times() -> None:
    from media_assets.lib.media.embedded import parse_srt

    text = (
        "1\n00:00:01,500 --> 00:00:03,250\n<i>Hello</i> {\\an8}there\n\n"
        "2\n01:00:00.000 --> 01:00:02.000\nLine one\nline two\n\n"
        "3\nbroken\n"
    )
    assert parse_srt(text) == [(1.5, 3.25, "Hello there"), (3600.0, 3602.0, "Line one line two")]


def test_subtitle_cues_round_trip_from_the_container(media) -> None:
    from media_assets.lib.media.embedded import extract_subtitle_cues

    assert extract_subtitle_cues(media["video"], 2) == samples.DEFAULT_CUES


def test_names_cannot_be_read_as_ffmpeg_options_or_protocols(tmp_path, media) -> None:
    for name in ["-i", "http:example.wav", "concat:a.wav|b.wav"]:
        path = Path(shutil.copy(media["tone"], tmp_path / name))
        assert media_tools.decoded_audio_seconds(path) == pytest.approx(4.0, abs=0.05)
