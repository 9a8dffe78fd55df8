"""The normalized_audio stage: `normalized_audio` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses

import soundfile

from media_assets.lib.core.lake import LakeStore, media_key, raw_key
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.media import loudness
from media_assets.lib.media.media_contract import first_stream
from media_assets.lib.media.quality import LOUDNESS
from media_assets.lib.media.settings import MediaSettings


@stage(
    upstream=("raw_media",),
    code_version="3",
    compute_class="cpu-normalization",
    kinds=("ffmpeg", "parquet"),
    tables=("loudness",),
    checks=(LOUDNESS,),
)
def normalized_audio(lake: LakeStore, episode_id: str, settings: MediaSettings) -> StageResult:
    """48 kHz 16-bit PCM WAV at the EBU R128 target by two-pass ffmpeg `loudnorm` in linear mode; measured
    input/output loudness and the mode ffmpeg used go to `loudness`."""
    target = settings.loudness
    run = StageRun(lake, normalized_audio, episode_id, dataclasses.asdict(target))
    if done := run.up_to_date():
        return done
    streams = run.upstream["raw_media"]["probe"]["streams"]
    audio = first_stream(streams, "audio")
    source_channels = audio["channels"] or 2
    with lake.local_copy(raw_key(episode_id)) as original, lake.scratch_dir() as tmp:
        wav = tmp / "audio.wav"
        report = loudness.normalize(original, wav, target, source_channels)
        row = {
            "episode_id": episode_id,
            **report,
            "channels": loudness.output_channels(source_channels),
            "duration_s": round(soundfile.info(str(wav)).duration, 6),
            "source_stream_index": audio["index"],
            "source_audio_streams": sum(s["codec_type"] == "audio" for s in streams),
            "source_channels": source_channels,
            "source_channel_layout": audio.get("channel_layout"),
            "downmix": "standard stereo matrix" if loudness.downmix_filters(source_channels) else None,
        }
        run.put_file("audio", media_key("normalized_audio", episode_id, "audio.wav"), wav)
    run.put_table("loudness", [row])
    return run.finish({"loudness": row})
