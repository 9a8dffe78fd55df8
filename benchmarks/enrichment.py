"""Benchmark: chapters + enriched_metadata + distribution per audio hour, and their share of the pipeline.

1. Whole pipeline, measured: the three-topic episode (espeak-ng, about 3 minutes, `scripts.THREE_TOPICS`)
   goes through every stage function once on a fresh lake (models loaded beforehand, so load time is
   not counted): raw_media, normalized_audio, media_metadata, transcript (faster-whisper, `--model`),
   diarization (local pyannote), speaker_transcript, chapters, enriched_metadata, distribution.
   Seconds and real-time factor (RTF = seconds / audio seconds) per stage.
2. One audio hour of the text stages, measured: the episode's audio looped to `--minutes` with ffmpeg
   and normalized for real; its transcript and diarization documents are the 3-minute ones repeated
   with shifted times (running Whisper and pyannote on an hour takes 20+ minutes here, and the text
   stages only read those documents). chapters, enriched_metadata and distribution then run on it.
3. Share: the text stages' hour against the whole pipeline's hour, where the speech stages' hour is
   their RTF from step 1 times 3600 s (stated as an extrapolation) and the other stages are measured.
4. Stage against bare libraries, on the hour: `chapters` and `enriched_metadata` are run once with
   spaCy and the sentence embedder wrapped to record every call (`nlp.pipe(texts)`,
   `embedder.encode(texts)`); "bare" then replays exactly those calls on the libraries, with no
   stage around them. Stage and bare alternate `--repeat` times; medians and stage/bare (goal <= 1.10x),
   of wall time and of the process's CPU time (all threads): the stage's own Python work, and
   anything that makes the libraries' threads spin, shows in CPU time even when wall time hides it;
   and the seconds Python's garbage collector took during each (`gc.callbacks`).

Run:  .venv/bin/python benchmarks/enrichment.py [--model tiny.en] [--minutes 60] [--repeat 3]
Figures also go to benchmarks/out/enrichment.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
SPEECH_STAGES = ("transcript", "diarization")
TEXT_STAGES = ("chapters", "enriched_metadata", "distribution")


def _env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.path.insert(0, str(REPO))


def _episode(folder: Path) -> Path:
    from media_assets.demo import samples
    from media_assets.demo.scripts import THREE_TOPICS, TOPIC_SCRIPTS

    path = folder / "three_topics.wav"
    if not path.exists():
        samples.conversation(path, [("en-us", 35, s) for t in THREE_TOPICS for s in TOPIC_SCRIPTS[t]], gap=0.5)
    return path


def _stages(model: str) -> dict:
    """Each stage but normalized_video as a function of (lake, episode id), with default settings."""
    from media_assets.lib.stages import STAGES
    from media_assets.resources import SETTINGS_RESOURCES, SpeechResource

    settings = {domain: resource().settings() for domain, resource in SETTINGS_RESOURCES.items()}
    settings["speech"] = SpeechResource(asr_model=model).settings()

    def runner(stage):
        return lambda lake, e: stage.run(lake, e, settings[stage.settings]) if stage.settings else stage.run(lake, e)

    return {stage.name: runner(stage) for stage in STAGES if stage.name != "normalized_video"}


def _warm_models(model: str) -> None:
    from media_assets.lib.speech import asr
    from media_assets.lib.speech import diarizer as diarization
    from media_assets.lib.text import text_models

    asr.load_engine(asr.AsrSettings(model=model))
    diarization.load_pipeline(diarization.DiarizationSettings())
    text_models.load_embedder(text_models.PACKAGED_EMBEDDER).encode(["warm up"])
    text_models.load_spacy(text_models.DEFAULT_SPACY_MODEL)("Warm up.")


def _register(lake, wav: Path) -> str:
    from media_assets.lib.media.ingest import ingest
    from media_assets.lib.media.media_contract import MediaLimits

    (outcome,) = ingest([wav], lake, MediaLimits(), lambda ids: None)
    return outcome.episode_id


def _run(stages: dict, names, lake, episode_id: str) -> dict[str, float]:
    seconds = {}
    for name in names:
        start = time.perf_counter()
        result = stages[name](lake, episode_id)
        seconds[name] = time.perf_counter() - start
        assert not result.skipped, name
    return seconds


def _tiled_documents(lake, short_id: str, long_id: str, copies: int, period: float) -> None:
    """The 3-minute transcript and diarization, repeated `copies` times `period` seconds apart."""
    from media_assets.lib.core import contracts
    from media_assets.lib.core.lake import document_key
    from media_assets.lib.core.stage import read_document

    def shift(item: dict, offset: float, keys: tuple[str, str]) -> dict:
        return {**item, keys[0]: round(item[keys[0]] + offset, 3), keys[1]: round(item[keys[1]] + offset, 3)}

    text = read_document(lake, "transcript", short_id)
    times = ("start", "end")
    text["segments"] = [
        {**shift(s, n * period, times), "words": [shift(w, n * period, times) for w in s["words"]]}
        for n in range(copies)
        for s in text["segments"]
    ]
    turns = read_document(lake, "diarization", short_id)
    turns["turns"] = [shift(t, n * period, ("start_time", "end_time")) for n in range(copies) for t in turns["turns"]]
    for stage, document in (("transcript", text), ("diarization", turns)):
        document["episode_id"] = long_id
        lake.put_bytes(document_key(stage, long_id), contracts.dump_document(stage, document))


class Recording:
    """A model (spaCy's Language or the embedder) that records the texts of each `pipe`/`encode` call."""

    def __init__(self, model, calls: list):
        self._model, self._calls = model, calls

    def pipe(self, texts, **kwargs):
        texts = list(texts)
        self._calls.append(("pipe", texts, kwargs))
        return self._model.pipe(texts, **kwargs)

    def encode(self, texts):
        self._calls.append(("encode", list(texts), {}))
        return self._model.encode(texts)

    def __getattr__(self, name):
        return getattr(self._model, name)


def _against_bare(stages: dict, lake, episode_id: str, repeat: int) -> dict:
    """Each spaCy+embedder stage against the library calls it makes (step 4 of the docstring)."""
    return {
        name: _stage_against_bare(name, stages, lake, episode_id, repeat) for name in ("chapters", "enriched_metadata")
    }


def _stage_against_bare(name: str, stages: dict, lake, episode_id: str, repeat: int) -> dict:
    from unittest import mock

    from media_assets.lib.core.lake import document_key
    from media_assets.lib.text import text_models

    nlp, embedder = text_models.load_spacy(text_models.DEFAULT_SPACY_MODEL), text_models.load_embedder()
    module = sys.modules[f"media_assets.lib.text.{name}"]

    def run_stage() -> None:
        (lake.root / document_key(name, episode_id)).unlink(missing_ok=True)
        _run(stages, [name], lake, episode_id)

    calls: list = []
    with (
        mock.patch.object(module, "load_spacy", lambda _name: Recording(nlp, calls)),
        mock.patch.object(module, "load_embedder", lambda _name: Recording(embedder, calls)),
    ):
        run_stage()  # fills the classifier's per-embedder cache, as in a warm worker
        calls.clear()
        run_stage()

    def bare() -> None:
        for kind, texts, kwargs in calls:
            list(nlp.pipe(texts, **kwargs)) if kind == "pipe" else embedder.encode(texts)

    collecting = [0.0, 0.0]  # seconds collected so far, start of the collection under way

    def count_collections(phase: str, _info: dict) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    sides = {"stage": run_stage, "bare": bare}
    times: dict[str, dict[str, list[float]]] = {clock: {"stage": [], "bare": []} for clock in ("wall", "cpu", "gc")}
    gc.callbacks.append(count_collections)
    for n in range(repeat):
        for side in ("stage", "bare") if n % 2 == 0 else ("bare", "stage"):
            wall, cpu, collected = time.perf_counter(), time.process_time(), collecting[0]
            sides[side]()
            times["wall"][side].append(time.perf_counter() - wall)
            times["cpu"][side].append(time.process_time() - cpu)
            times["gc"][side].append(collecting[0] - collected)
    gc.callbacks.remove(count_collections)
    medians = {clock: {side: statistics.median(v) for side, v in by_side.items()} for clock, by_side in times.items()}
    return {
        "calls": {kind: sum(1 for k, *_ in calls if k == kind) for kind in ("pipe", "encode")},
        "texts": sum(len(texts) for _, texts, _ in calls),
        "seconds": {
            clock: {side: [round(v, 3) for v in values] for side, values in by_side.items()}
            for clock, by_side in times.items()
        },
        "stage_over_bare": {clock: round(m["stage"] / m["bare"], 3) for clock, m in medians.items() if clock != "gc"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _env()
    from media_assets.lib.core.lake import LocalStore
    from media_assets.lib.core.stage import read_document

    work = OUT / "enrichment"
    shutil.rmtree(work / "lake", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    lake = LocalStore(work / "lake")
    stages = _stages(args.model)
    _warm_models(args.model)

    short_wav = _episode(work)
    short_id = _register(lake, short_wav)
    short = _run(stages, list(stages), lake, short_id)
    short_seconds = read_document(lake, "normalized_audio", short_id)["loudness"]["duration_s"]

    copies = max(1, round(args.minutes * 60 / short_seconds))
    long_wav = work / f"three_topics_x{copies}.wav"
    if not long_wav.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-stream_loop", str(copies - 1),
                        "-i", str(short_wav), "-c", "copy", str(long_wav)], check=True)  # fmt: skip
    long_id = _register(lake, long_wav)
    long = _run(stages, ["raw_media", "normalized_audio", "media_metadata"], lake, long_id)
    long_seconds = read_document(lake, "normalized_audio", long_id)["loudness"]["duration_s"]
    _tiled_documents(lake, short_id, long_id, copies, long_seconds / copies)
    long |= _run(stages, ["speaker_transcript", *TEXT_STAGES], lake, long_id)

    hours = long_seconds / 3600
    text_hour = sum(long[s] for s in TEXT_STAGES) / hours
    speech_hour = sum(short[s] / short_seconds * 3600 for s in SPEECH_STAGES)
    other_hour = sum(v for k, v in long.items() if k not in TEXT_STAGES) / hours
    figures = {
        "episode_seconds": round(short_seconds, 2),
        "model": args.model,
        "short_episode": {k: {"seconds": round(v, 3), "rtf": round(v / short_seconds, 4)} for k, v in short.items()},
        "short_text_share": round(sum(short[s] for s in TEXT_STAGES) / sum(short.values()), 4),
        "long_audio_seconds": round(long_seconds, 1),
        "long_episode": {k: round(v, 3) for k, v in long.items()},
        "text_stages_seconds_per_audio_hour": round(text_hour, 2),
        "speech_stages_seconds_per_audio_hour_extrapolated": round(speech_hour, 1),
        "other_stages_seconds_per_audio_hour": round(other_hour, 1),
        "text_share_of_pipeline_hour": round(text_hour / (text_hour + speech_hour + other_hour), 4),
        "chapters_per_hour": len(read_document(lake, "chapters", long_id)["chapters"]),
        "against_bare_libraries": _against_bare(stages, lake, long_id, args.repeat),
    }
    (OUT / "enrichment.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"episode: {short_seconds:.1f} s, ASR model {args.model}")
    print(f"{'stage':<20}{'seconds':>10}{'RTF':>10}")
    for name, value in short.items():
        print(f"{name:<20}{value:>10.2f}{value / short_seconds:>10.4f}")
    print(f"text stages' share of this episode's pipeline: {figures['short_text_share']:.1%}")
    print(f"\n{long_seconds / 60:.1f} min of audio (the episode x{copies}):")
    for name, value in long.items():
        print(f"{name:<20}{value:>10.2f}")
    print(f"chapters + enriched_metadata + distribution: {text_hour:.1f} s per audio hour "
          f"({figures['chapters_per_hour']} chapters)")  # fmt: skip
    print(f"speech stages per audio hour (extrapolated from RTF): {speech_hour:.0f} s; "
          f"other stages: {other_hour:.0f} s")  # fmt: skip
    print(f"text stages' share of a pipeline hour: {figures['text_share_of_pipeline_hour']:.1%}")
    for name, against in figures["against_bare_libraries"].items():
        print(f"{name} on the hour against the same spaCy/embedder calls made bare: {json.dumps(against)}")


if __name__ == "__main__":
    main()
