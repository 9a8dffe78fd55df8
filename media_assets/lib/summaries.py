"""What a content engineer reads on a materialization in the UI: each stage's headline figures,
taken from its stage document. Pure functions over documents, so they test without Dagster;
`defs/episodes.py` turns the values into Dagster metadata (`Markdown` becomes rendered text)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from media_assets.lib.metrics import DISTRIBUTION_SUFFIX, bucketed

PREVIEW_SEGMENTS = 8
TOP_N = 5


class Markdown(str):
    """Text the UI renders as Markdown."""


BY_STAGE: dict[str, Callable[[dict], dict]] = {}


def _summarizes(figures: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """Register `figures` as the summary of the stage it is named after."""
    BY_STAGE[figures.__name__] = figures
    return figures


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return (
        f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
        if whole >= 3600
        else f"{whole // 60}:{whole % 60:02d}"
    )


def _cell(text: str) -> str:
    """Plain text inside a Markdown table cell or list item: nothing in it is markup."""
    return "".join(f"\\{c}" if c in "\\`*_[]<>#|" else c for c in " ".join(str(text).split()))


@_summarizes
def raw_media(doc: dict) -> dict:
    probe = doc["probe"]
    return {
        "duration_s": round(doc["decoded_duration_s"], 3),
        "size_mb": round(doc["size_bytes"] / 1e6, 3),
        "container": probe["format_long_name"] or probe["format_name"],
        "streams": ", ".join(f"{s['codec_type']}:{s['codec_name']}" for s in probe["streams"]),
        "sha256": doc["sha256"],
    }


@_summarizes
def normalized_audio(doc: dict) -> dict:
    loudness = doc["loudness"]
    return {
        "duration_s": round(loudness["duration_s"], 3),
        "loudness_in_lufs": loudness["input_i"],
        "loudness_out_lufs": loudness["output_i"],
        "loudness_target_lufs": loudness["target_i"],
        "true_peak_out_dbtp": loudness["output_tp"],
        "loudness_range_out_lu": loudness["output_lra"],
        "normalization": loudness["normalization_type"],
        "format": f"{loudness['sample_rate']} Hz, {loudness['bit_depth']}-bit, {loudness['channels']} channel(s)",
    }


@_summarizes
def normalized_video(doc: dict) -> dict:
    return {"video": "none: audio-only episode"} if doc.get("skipped") else {}


@_summarizes
def media_metadata(doc: dict) -> dict:
    tags = {**doc["container_tags"], **doc["id3"]}
    return {"embedded_tags": len(tags), "caption_streams": len(doc["caption_streams"])}


@_summarizes
def transcript(doc: dict) -> dict:
    words = [w for s in doc["segments"] for w in s["words"]]
    figures = {
        "language": doc["language"] or "none",
        "word_count": len(words),
        "mean_word_probability": round(sum(w["probability"] for w in words) / len(words), 4) if words else None,
        f"word_probability{DISTRIBUTION_SUFFIX}": bucketed(w["probability"] for w in words),
        "asr_model": doc["model"],
    }
    if doc["empty_reason"]:
        figures["empty_reason"] = doc["empty_reason"]
    lines = [f"**{_clock(s['start'])}** {_cell(s['text'])}" for s in doc["segments"][:PREVIEW_SEGMENTS]]
    if len(doc["segments"]) > PREVIEW_SEGMENTS:
        lines.append(f"*... {len(doc['segments']) - PREVIEW_SEGMENTS} more segments*")
    figures["transcript_preview"] = Markdown("\n\n".join(lines) or f"*no transcript: {doc['empty_reason']}*")
    return figures


@_summarizes
def diarization(doc: dict) -> dict:
    talk: dict[str, float] = defaultdict(float)
    for turn in doc["turns"]:
        talk[turn["speaker_id"]] += turn["end_time"] - turn["start_time"]
    total = sum(talk.values())
    rows = [
        f"| {speaker} | {seconds:.1f} | {seconds / total:.0%} |"
        for speaker, seconds in sorted(talk.items(), key=lambda item: -item[1])
    ]
    confidences = [t["confidence_score"] for t in doc["turns"]]
    return {
        "speaker_count": doc["speaker_count"],
        "turns": len(doc["turns"]),
        "mean_turn_confidence": round(sum(confidences) / len(confidences), 4) if confidences else None,
        f"turn_confidence{DISTRIBUTION_SUFFIX}": bucketed(confidences),
        "talk_time_share": Markdown("| speaker | seconds | share |\n|---|---|---|\n" + "\n".join(rows))
        if rows
        else None,
    }


@_summarizes
def speaker_transcript(doc: dict) -> dict:
    return {"subtitle_cues": doc["cue_count"], "unattributed_words": doc["unattributed_words"]}


@_summarizes
def chapters(doc: dict) -> dict:
    items = [f"{n}. **{_clock(c['start_time'])}** {_cell(c['title'])}" for n, c in enumerate(doc["chapters"], 1)]
    return {"chapter_count": len(doc["chapters"]), "chapter_titles": Markdown("\n".join(items) or "*no chapters*")}


@_summarizes
def enriched_metadata(doc: dict) -> dict:
    entities = sorted(doc["entities"], key=lambda e: (-e["mentions"], e["first_start_time"] or 0.0))[:TOP_N]
    return {
        "top_entities": Markdown(
            "\n".join(f"- {_cell(e['text'])} ({e['label']}, {e['mentions']}x)" for e in entities) or "*none*"
        ),
        "top_keywords": ", ".join(doc["keywords"][:TOP_N]),
        "top_categories": Markdown(
            "\n".join(f"- {c['id']}: {c['score']:.2f}" for c in doc["categories"][:TOP_N]) or "*none*"
        ),
    }


@_summarizes
def distribution(doc: dict) -> dict:
    return {"chapter_count": doc["chapter_count"], "mp3_size_mb": round(doc["mp3_size_bytes"] / 1e6, 3)}


def summary(document: dict) -> dict:
    """The figures of one stage document, None values left out."""
    return {k: v for k, v in BY_STAGE[document["stage"]](document).items() if v is not None}
