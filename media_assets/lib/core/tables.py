"""Table contracts: one column spec per table gives the pandera schema (checked before every
write), the Arrow schema (stable Parquet types, even for empty tables) and the column docs."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import cache

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet as pq
from pandera.errors import SchemaError, SchemaErrors

from media_assets.lib.core.errors import ContractViolation
from media_assets.lib.core.identity import EPISODE_ID_PATTERN

EPISODE_ID = pa.Check.str_matches(EPISODE_ID_PATTERN)

_PANDAS = {"str": "string", "float": "float64", "int": "Int64", "bool": "boolean"}
_ARROW = {"str": pyarrow.string(), "float": pyarrow.float64(), "int": pyarrow.int64(), "bool": pyarrow.bool_()}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str
    nullable: bool = False
    checks: tuple = field(default=())


def _col(name, dtype, description, *checks, nullable=False) -> Column:
    return Column(name, dtype, description, nullable, tuple(checks))


_EPISODE = _col(
    "episode_id", "str", "episode partition key: a slug of the first upload's name and a SHA-256 prefix", EPISODE_ID
)

TABLES: dict[str, list[Column]] = {
    "episodes": [
        _EPISODE,
        _col("sha256", "str", "SHA-256 of the original bytes", pa.Check.str_matches(r"^[0-9a-f]{64}$")),
        _col("source_uri", "str", "where the bytes were ingested from (kept as data, never used as a path)"),
        _col("original_name", "str", "original file name (kept as data)"),
        _col("size_bytes", "int", "size of the original file", pa.Check.gt(0)),
        _col("container", "str", "ffprobe format_name"),
        _col("duration_s", "float", "seconds of audio that actually decode", pa.Check.gt(0)),
        _col("header_duration_s", "float", "duration the container header claims", nullable=True),
        _col("audio_codec", "str", "codec of the first audio stream"),
        _col("sample_rate", "int", "sample rate of the first audio stream", pa.Check.gt(0)),
        _col("channels", "int", "channels of the first audio stream", pa.Check.gt(0)),
        _col("has_video", "bool", "whether a (non cover-art) video stream is present"),
        _col("video_codec", "str", "codec of the first video stream", nullable=True),
        _col("width", "int", "video width in pixels", nullable=True),
        _col("height", "int", "video height in pixels", nullable=True),
        _col("stream_count", "int", "number of streams in the container", pa.Check.ge(1)),
        _col("sidecar_verified", "bool", "whether a .sha256 sidecar was present and matched"),
    ],
    "loudness": [
        _EPISODE,
        _col("input_i", "float", "input integrated loudness (LUFS); null for digital silence", nullable=True),
        _col("input_tp", "float", "input true peak (dBTP)", nullable=True),
        _col("input_lra", "float", "input loudness range (LU)", pa.Check.ge(0), nullable=True),
        _col("input_thresh", "float", "input gating threshold (LUFS)", nullable=True),
        _col("output_i", "float", "output integrated loudness (LUFS) as ffmpeg measured it", nullable=True),
        _col("output_tp", "float", "output true peak (dBTP)", nullable=True),
        _col("output_lra", "float", "output loudness range (LU)", pa.Check.ge(0), nullable=True),
        _col("output_thresh", "float", "output gating threshold (LUFS)", nullable=True),
        _col("target_i", "float", "configured integrated loudness target", pa.Check.in_range(-70, -5)),
        _col("target_tp", "float", "configured true-peak ceiling", pa.Check.in_range(-9, 0)),
        _col("target_lra", "float", "configured loudness range target", pa.Check.in_range(1, 50)),
        _col(
            "effective_lra",
            "float",
            "LRA passed to loudnorm so that it stays linear",
            pa.Check.in_range(1, 50),
            nullable=True,
        ),
        _col(
            "normalization_type",
            "str",
            "mode ffmpeg reports it used (none: digital silence, no gain)",
            pa.Check.isin(["linear", "dynamic", "none"]),
        ),
        _col(
            "pre_limiter_ceiling_db",
            "float",
            "sample-peak ceiling of the pre-limiter, when one was needed",
            nullable=True,
        ),
        _col("sample_rate", "int", "output sample rate", pa.Check.gt(0)),
        _col("bit_depth", "int", "output bits per sample", pa.Check.eq(16)),
        _col("channels", "int", "output channels", pa.Check.in_range(1, 2)),
        _col("duration_s", "float", "output duration in seconds", pa.Check.gt(0)),
        _col("source_stream_index", "int", "ffprobe index of the audio stream used (the first one)", pa.Check.ge(0)),
        _col("source_audio_streams", "int", "audio streams in the upload", pa.Check.ge(1)),
        _col("source_channels", "int", "channels of the audio stream used", pa.Check.ge(1)),
        _col("source_channel_layout", "str", "its channel layout as ffprobe names it", nullable=True),
        _col(
            "downmix",
            "str",
            "how more than two channels became stereo (ffmpeg's standard matrix, LFE dropped); null: none",
            nullable=True,
        ),
    ],
    "video_renditions": [
        _EPISODE,
        _col("codec", "str", "video codec", pa.Check.eq("h264")),
        _col("width", "int", "width in pixels", pa.Check.gt(0)),
        _col("height", "int", "height in pixels", pa.Check.gt(0)),
        _col("frame_rate", "float", "frames per second", pa.Check.gt(0)),
        _col("gop_seconds", "float", "configured keyframe interval", pa.Check.gt(0)),
        _col("keyframe_count", "int", "keyframes in the output", pa.Check.ge(1)),
        _col("max_keyframe_gap_s", "float", "largest distance between consecutive keyframes"),
        _col("audio_codec", "str", "audio codec", pa.Check.eq("aac")),
        _col("duration_s", "float", "duration in seconds", pa.Check.gt(0)),
        _col("faststart", "bool", "moov atom before mdat"),
        _col("size_bytes", "int", "file size", pa.Check.gt(0)),
    ],
    "media_metadata": [
        _EPISODE,
        _col("source", "str", "where the field came from", pa.Check.isin(["id3", "container", "stream", "exif"])),
        _col("stream_index", "int", "stream the tag belongs to (stream tags only)", nullable=True),
        _col("key", "str", "tag or field name"),
        _col("value", "str", "tag value as text"),
    ],
    "captions": [
        _EPISODE,
        _col("stream_index", "int", "subtitle stream index in the container", pa.Check.ge(0)),
        _col("language", "str", "language tag of the stream", nullable=True),
        _col("codec", "str", "subtitle codec"),
        _col("cue_index", "int", "cue number within the stream", pa.Check.ge(0)),
        _col("start_time", "float", "cue start (s)", pa.Check.ge(0)),
        _col("end_time", "float", "cue end (s)", pa.Check.ge(0)),
        _col("text", "str", "cue text"),
    ],
    "transcript_segments": [
        _EPISODE,
        _col("segment_index", "int", "segment number in the transcript", pa.Check.ge(0)),
        _col("start_time", "float", "segment start (s)", pa.Check.ge(0)),
        _col("end_time", "float", "segment end (s)", pa.Check.ge(0)),
        _col("text", "str", "recognized text"),
        _col("speaker_id", "str", "speaker with the largest overlap (null: nobody near)", nullable=True),
        _col("language", "str", "language of the transcript", nullable=True),
        _col("avg_logprob", "float", "mean token log probability", nullable=True),
        _col("no_speech_prob", "float", "probability the segment holds no speech", nullable=True),
    ],
    "transcript_words": [
        _EPISODE,
        _col("segment_index", "int", "segment the word belongs to", pa.Check.ge(0)),
        _col("word_index", "int", "word number in the transcript", pa.Check.ge(0)),
        _col("start_time", "float", "word start (s)", pa.Check.ge(0)),
        _col("end_time", "float", "word end (s)", pa.Check.ge(0)),
        _col("word", "str", "the word as recognized (punctuation kept)"),
        _col("probability", "float", "recognizer confidence", pa.Check.in_range(0, 1)),
        _col("speaker_id", "str", "speaker with the largest overlap (null: nobody near)", nullable=True),
    ],
    "speaker_turns": [
        _EPISODE,
        _col("turn_index", "int", "turn number", pa.Check.ge(0)),
        _col("speaker_id", "str", "speaker label, stable within the episode"),
        _col("start_time", "float", "turn start (s)", pa.Check.ge(0)),
        _col("end_time", "float", "turn end (s)", pa.Check.ge(0)),
        _col(
            "confidence_score",
            "float",
            "how sure the diarizer is of this speaker (see diarization JSON)",
            pa.Check.in_range(0, 1),
        ),
    ],
    "chapters": [
        _EPISODE,
        _col("chapter_index", "int", "chapter number, from 0", pa.Check.ge(0)),
        _col("start_time", "float", "chapter start (s); the first chapter starts at 0", pa.Check.ge(0)),
        _col("end_time", "float", "chapter end (s); the last chapter ends at the episode's end", pa.Check.ge(0)),
        _col("title", "str", "short title from the chapter's key phrases"),
        _col(
            "boundary_reason",
            "str",
            "why the chapter starts here: episode_start, or '+'-joined topic_shift, "
            "pause, speaker_change, max_length (combined: no single feature stood out)",
        ),
        _col("topic_depth", "float", "TextTiling depth of the topic-similarity valley at the boundary", nullable=True),
        _col("pause_s", "float", "silence between the words either side of the boundary", nullable=True),
        _col("speaker_shift", "float", "change in who talks across the boundary, 0-1", nullable=True),
        _col("sentence_count", "int", "sentences in the chapter", pa.Check.ge(0)),
        _col("word_count", "int", "words in the chapter", pa.Check.ge(0)),
        _col("key_phrases", "str", "the chapter's key phrases, best first, '; '-separated"),
        _col("category_id", "str", "best taxonomy category for the chapter's text", nullable=True),
        _col("category_score", "float", "its score, 0-1", pa.Check.in_range(0, 1), nullable=True),
    ],
    "entities": [
        _EPISODE,
        _col("entity", "str", "the entity as first said"),
        _col("label", "str", "spaCy label: PERSON, ORG, GPE, LOC, DATE, EVENT, ..."),
        _col("mentions", "int", "times it was said (transcript and captions)", pa.Check.ge(1)),
        _col("first_start_time", "float", "when it was first said (s)", pa.Check.ge(0)),
        _col("first_end_time", "float", "end of that first mention (s)", pa.Check.ge(0)),
        _col("sources", "str", "comma-separated: transcript, captions"),
    ],
    "keywords": [
        _EPISODE,
        _col("rank", "int", "1 = most relevant", pa.Check.ge(1)),
        _col("keyword", "str", "noun phrase as first said (common nouns lower-cased, names as spelled)"),
        _col("score", "float", "relevance to the episode (embedding similarity plus a repetition bonus)"),
        _col("mentions", "int", "times it was said", pa.Check.ge(1)),
        _col("first_start_time", "float", "when it was first said (s)", pa.Check.ge(0)),
    ],
    "classifications": [
        _EPISODE,
        _col("rank", "int", "1 = best category", pa.Check.ge(1)),
        _col("category_id", "str", "taxonomy id (see media_assets/lib/text/taxonomy.py)"),
        _col("category_name", "str", "display name"),
        _col("score", "float", "similarity of the episode's text to the category, 0-1", pa.Check.in_range(0, 1)),
    ],
    "quality_checks": [
        _EPISODE,
        _col("stage", "str", "the stage whose outputs were checked"),
        _col("check_name", "str", "the quality gate (see the stage's declaration)"),
        _col("passed", "bool", "whether the outputs passed"),
        _col("blocking", "bool", "a failed blocking gate stops the episode's later stages"),
        _col("summary", "str", "what was found, in words"),
        _col("figures", "str", "JSON: what was measured and the limits it was held to"),
        _col("stage_fingerprint", "str", "fingerprint of the stage document that was checked"),
        _col("gates_fingerprint", "str", "what the outcome depends on: outputs, gates, their code and limits"),
    ],
}


def _ordered_times(df: pd.DataFrame) -> pd.Series:
    return df["end_time"] >= df["start_time"]


_ORDERED = [pa.Check(_ordered_times, error="end_time must not precede start_time")]
_TABLE_CHECKS = {
    name: _ORDERED for name in ("captions", "transcript_segments", "transcript_words", "speaker_turns", "chapters")
}


@cache
def pandera_schema(table: str) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            c.name: pa.Column(_PANDAS[c.dtype], checks=list(c.checks), nullable=c.nullable, description=c.description)
            for c in TABLES[table]
        },
        checks=_TABLE_CHECKS.get(table, []),
        strict=True,
        ordered=True,
        coerce=True,
        name=table,
    )


@cache
def arrow_schema(table: str) -> pyarrow.Schema:
    return pyarrow.schema([pyarrow.field(c.name, _ARROW[c.dtype], nullable=c.nullable) for c in TABLES[table]])


def validate_rows(table: str, rows: list[dict]) -> pd.DataFrame:
    """Check rows against the table's pandera schema; a violation names the column."""
    frame = pd.DataFrame(rows, columns=[c.name for c in TABLES[table]])
    try:
        return pandera_schema(table).validate(frame)
    except (SchemaError, SchemaErrors) as exc:
        raise ContractViolation(f"table {table}: {exc}".splitlines()[0]) from exc


def to_parquet_bytes(table: str, rows: list[dict]) -> bytes:
    """Validate, then write Parquet deterministically (no pandas metadata, fixed schema)."""
    frame = validate_rows(table, rows)
    arrow = pyarrow.Table.from_pandas(frame, schema=arrow_schema(table), preserve_index=False)
    arrow = arrow.replace_schema_metadata(None)
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd")
    return buffer.getvalue()


def from_parquet_bytes(table: str, data: bytes) -> list[dict]:
    """Rows of a table file, checked against the table's contract on read."""
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    validate_rows(table, rows)
    return rows
