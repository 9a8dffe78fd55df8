"""Media: ingest and the media contract, ffmpeg/ffprobe, loudness, video; stages raw_media,
normalized_audio, normalized_video, media_metadata."""
