"""`media-lake metrics serve`, scraped for real after real runs: one episode that succeeds, one that
fails its loudness gate on purpose, one upload rejected at ingest and one duplicate; the totals
are known answers (the lake's own documents), and a restarted exporter reports the same ones."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from media_assets.demo import samples
from media_assets.instance import get_instance
from media_assets.lib.core.errors import MediaToolError
from media_assets.lib.core.stage import read_document
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.media_tools import PROGRESS_LISTENER, Progress, run_ffmpeg
from media_assets.lib.metrics import CONFIDENCE_BUCKETS, Histogram, Materialization, Tally, bucketed
from media_assets.lib.stages import BY_NAME
from media_assets.observability.exporter import declared_sensors, sensor_started
from media_assets.observability.ffmpeg_progress import Report, key, reporting, running
from media_assets.resources import MediaResource
from media_assets_tests.conftest import EPISODE_ASSETS, materialize_episode, register_episode
from media_assets_tests.services import free_port, stop, wait_for

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "k8s" / "monitoring"
STATE_FAMILIES = ("media_lake_exporter_scrape_duration_seconds", "media_lake_run_queue_oldest_age_seconds")


def test_histogram_buckets_are_cumulative_with_the_overflow_last() -> None:
    histogram = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 7.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("1.0", 2), ("2.0", 3), ("+Inf", 4)]
    assert histogram.total == 10.0
    carried = bucketed([0.05, 0.95, 0.97, 1.0])
    assert carried["counts"][0] == 1 and sum(carried["counts"]) == 4 and carried["sum"] == pytest.approx(2.97)
    assert len(carried["counts"]) == len(CONFIDENCE_BUCKETS) + 1
    with pytest.raises(ValueError, match="bucket counts"):
        histogram.merge([1], 1.0)


def test_a_tally_fed_the_same_events_twice_over_gives_the_same_figures() -> None:
    events = [
        Materialization("raw_media", "e1", "r1", False, 0.5, 120.0),
        Materialization("transcript", "e1", "r1", False, 12.0, 120.0, {"word_probability": ([0] * 10 + [3, 0], 2.8)}),
        Materialization("transcript", "e1", "r1", True, 0.1, 120.0),  # up to date: no work, no timing
        Materialization("distribution", "e1", "r1", False, 1.0, 120.0),
        Materialization("transcript", "e1", "r2", False, 10.0, 120.0),  # a run of one stage
    ]

    def fed() -> Tally:
        tally = Tally()
        for event in events:
            tally.materialized(event)
        tally.run_ended("r1", "episode_job", "SUCCESS", 60.0, "e1")
        tally.run_ended("r2", "episode_job", "SUCCESS", 15.0, "e1")  # not end to end
        return tally

    first, second = fed(), fed()
    assert (
        first.materializations
        == second.materializations
        == {
            ("raw_media", "done"): 1,
            ("transcript", "done"): 2,
            ("transcript", "skipped"): 1,
            ("distribution", "done"): 1,
        }
    )
    assert first.stage_rtf["transcript"].cumulative() == second.stage_rtf["transcript"].cumulative()
    assert first.stage_rtf["transcript"].total == pytest.approx(22.0 / 120.0)
    assert first.audio_seconds == {"raw_media": 120.0, "transcript": 240.0, "distribution": 120.0}
    assert first.quality["word_probability"].cumulative()[-1] == ("+Inf", 3)
    assert first.seconds_per_audio_hour.cumulative()[-1] == ("+Inf", 1)  # r1 only
    assert first.seconds_per_audio_hour.total == pytest.approx(1800.0)  # 60 s for 2 audio minutes


def test_a_sensor_is_started_as_its_code_declares_until_started_or_stopped_by_hand() -> None:
    declared = declared_sensors()
    assert declared["inbox_sensor"] is True and {"dead_run_sensor", "ingested_upload_sensor"} <= set(declared)

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="media_assets.definitions"))
    origin = RemoteRepositoryOrigin(location, "__repository__").get_instigator_origin("inbox_sensor")

    def state(status: InstigatorStatus) -> InstigatorState:
        return InstigatorState(origin, InstigatorType.SENSOR, status)

    assert sensor_started(True, None)  # no daemon has looked at it yet
    assert sensor_started(True, state(InstigatorStatus.DECLARED_IN_CODE))
    assert not sensor_started(False, state(InstigatorStatus.DECLARED_IN_CODE))  # its default became stopped
    assert sensor_started(False, state(InstigatorStatus.RUNNING))  # started by hand
    assert not sensor_started(True, state(InstigatorStatus.STOPPED))  # stopped by hand


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        return response.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def collected(collector) -> dict[tuple[str, tuple], float]:
    """The samples a scrape of `collector` serves, read in this process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return _samples(generate_latest(registry).decode())


def _exported_names(text: str) -> set[str]:
    """Every series name the exporter serves, for families without samples too."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in text_string_to_metric_families(text) for suffix in suffixes[family.type]}


def _metric_names(expression: str) -> set[str]:
    """The media_lake series an expression reads (recording rules' names included)."""
    return set(re.findall(r"\bmedia_lake[a-z0-9_:]*", expression))


def _value(samples: dict, name: str, **labels) -> float:
    wanted = tuple(sorted(labels.items()))
    found = [value for (n, have), value in samples.items() if n == name and set(wanted) <= set(have)]
    return sum(found)


def _serve(port: int, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "media_assets.cli", "metrics", "serve", "--port", str(port), "--host", "127.0.0.1"],
            cwd=REPO,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: _up(port), 120, "the exporter", interval=0.5, alive=[process], log=log)
    except BaseException:
        stop(process)
        raise
    return process


def _up(port: int) -> bool:
    try:
        _scrape(port)
        return True
    except OSError:
        return False


def test_the_exporter_counts_real_runs_and_keeps_its_totals_across_a_restart(dagster_env, media, tmp_path) -> None:
    instance, resources, lake, good = register_episode(dagster_env, media["speech"])
    assert materialize_episode(instance, resources, good, EPISODE_ASSETS).success
    _, _, _, bad = register_episode(dagster_env, media["tone"])
    strict = {**resources, "media": MediaResource(true_peak_margin_db=-40.0)}  # any peak is over the ceiling
    assert not materialize_episode(instance, strict, bad, ["raw_media", "normalized_audio"]).success
    broken = samples.random_bytes(tmp_path / "uploads" / "noise.mp3")
    copy = Path(shutil.copy(media["speech"], tmp_path / "uploads" / "speech again.wav"))
    outcomes = ingest([broken, copy], lake, MediaLimits(), lambda ids: None)
    assert sorted(o.status for o in outcomes) == ["duplicate", "rejected"]
    (again,) = ingest([media["speech"]], lake, MediaLimits(), lambda ids: None)  # the same upload, again
    assert again.status == "duplicate"  # and not counted as one: it is the registered upload itself
    rejection = next(o.reason for o in outcomes if o.status == "rejected")

    lake.put_bytes("_dlq/ffffffffffffffff.json", b'{"stage": "half a record')  # left out, counted
    # A run waiting in the run queue (no daemon here to take it); queued runs name their code's origin.
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="media_assets.definitions"))
    origin = RemoteRepositoryOrigin(location, "__repository__").get_job_origin("episode_job")
    instance.add_run(
        dg.DagsterRun(
            job_name="episode_job",
            status=dg.DagsterRunStatus.QUEUED,
            tags={"dagster/partition": good},
            remote_job_origin=origin,
        )
    )

    log = tmp_path / "exporter.log"
    port = free_port()
    exporter = _serve(port, log)
    try:
        text = _scrape(port)
    finally:
        stop(exporter)
    assert exporter.returncode == 0, log.read_text()[-3000:]
    first = _samples(text)

    # Runs and stages: the good episode's ten stages did their work once; the bad one's audio was
    # normalized (its materialization is reported) and then failed its blocking loudness gate.
    job = "__ephemeral_asset_job__"
    assert _value(first, "media_lake_runs_finished_total", job=job, status="SUCCESS") == 1
    assert _value(first, "media_lake_runs_finished_total", job=job, status="FAILURE") == 1
    for stage in EPISODE_ASSETS:
        done = 2 if stage in ("raw_media", "normalized_audio") else 1
        labels = {"stage": stage, "compute_class": BY_NAME[stage].compute_class}
        assert _value(first, "media_lake_stage_materializations_total", work="done", **labels) == done, stage
        assert _value(first, "media_lake_stage_duration_seconds_count", **labels) == done, stage
        assert _value(first, "media_lake_stage_real_time_factor_count", **labels) == done, stage
        assert _value(first, "media_lake_stage_duration_seconds_sum", **labels) > 0, stage
    seconds = read_document(lake, "raw_media", good)["decoded_duration_s"]
    assert _value(first, "media_lake_stage_audio_seconds_total", stage="transcript") == pytest.approx(seconds)
    assert _value(first, "media_lake_run_duration_seconds_count", job=job) == 2
    assert _value(first, "media_lake_episode_seconds_per_audio_hour_count") == 1

    # Quality: every word's probability and every turn's confidence, the gates' outcomes.
    words = [w for s in read_document(lake, "transcript", good)["segments"] for w in s["words"]]
    turns = read_document(lake, "diarization", good)["turns"]
    assert len(words) >= 7 and turns
    assert _value(first, "media_lake_word_probability_count") == len(words)
    assert _value(first, "media_lake_word_probability_sum") == pytest.approx(
        sum(w["probability"] for w in words), abs=1e-4
    )
    assert _value(first, "media_lake_turn_confidence_count") == len(turns)
    assert (
        _value(first, "media_lake_asset_checks_total", stage="normalized_audio", check="loudness", outcome="passed")
        == 1
    )
    assert (
        _value(first, "media_lake_asset_checks_total", stage="normalized_audio", check="loudness", outcome="failed")
        == 1
    )
    assert _value(first, "media_lake_loudness_compliance_ratio") == 0.5

    # Failures, dead letters and inputs.
    assert _value(first, "media_lake_step_failures_total", stage="normalized_audio") == 1
    assert (
        _value(first, "media_lake_dead_letters", stage="normalized_audio", reason="quality_gate_failed", state="open")
        == 1
    )
    assert _value(first, "media_lake_dead_letters", stage="ingest", reason=rejection, state="open") == 1
    assert _value(first, "media_lake_inputs", outcome="registered") == 2
    assert _value(first, "media_lake_inputs", outcome="duplicate") == 1
    assert _value(first, "media_lake_inputs", outcome="rejected", reason=rejection) == 1

    assert _value(first, "media_lake_exporter_section_up") == 8  # every section read
    assert _value(first, "media_lake_exporter_unreadable_records_total", source="dead_letters") == 1
    assert _value(first, "media_lake_exporter_unreadable_records_total", source="event_log") == 0

    # State now: the queued run, waiting since it was enqueued; the pools of every compute class.
    assert _value(first, "media_lake_runs", job="episode_job", status="QUEUED") == 1
    assert _value(first, "media_lake_runs") == 1
    assert 0 < _value(first, "media_lake_run_queue_oldest_age_seconds") < 600
    for pool in ("gpu-transcription", "cpu-normalization", "cpu-nlp", "cpu-metadata"):
        assert _value(first, "media_lake_pool_slots", pool=pool) >= 1
        assert _value(first, "media_lake_pool_slots_in_use", pool=pool) == 0

    # Bounded labels: no episode id and no run id is ever a label value.
    ids = {good, bad} | {r.dagster_run.run_id for r in instance.get_run_records()}
    assert not [key for key in first if ids & {value for _, value in key[1]}]

    # A restarted exporter reads the durable state again and reports the same totals.
    exporter = _serve(port, log)
    try:
        second = _samples(_scrape(port))
    finally:
        stop(exporter)
    totals = {key: value for key, value in first.items() if key[0] not in STATE_FAMILIES}
    assert {key: second.get(key) for key in totals} == totals
    assert not math.isnan(second[("media_lake_exporter_scrape_duration_seconds", ())])

    # Every series the shipped rules and dashboard read is one the exporter serves, or one the
    # rules record.
    rules = yaml.safe_load((MONITORING / "media-lake.rules.yaml").read_text())["groups"]
    recorded = {rule["record"] for group in rules for rule in group["rules"] if "record" in rule}
    expressions = [rule["expr"] for group in rules for rule in group["rules"]]
    dashboard = json.loads((MONITORING / "media-lake-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(queries) >= 20
    unknown = {name for e in expressions + queries for name in _metric_names(e)} - _exported_names(text) - recorded
    assert not unknown, unknown
    assert {"media_lake:stage_real_time_factor:p95_over_slo", "media_lake:dead_letters_open"} <= {
        name for query in queries for name in _metric_names(query)
    }


def test_alert_rules_pass_promtool_and_fire_from_synthetic_series() -> None:
    assert shutil.which("promtool"), "promtool is missing: `make test` installs it (Debian's prometheus package)"
    for command in (["check", "rules", "media-lake.rules.yaml"], ["test", "rules", "media-lake.rules.test.yaml"]):
        done = subprocess.run(["promtool", *command], cwd=MONITORING, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    tested = yaml.safe_load((MONITORING / "media-lake.rules.test.yaml").read_text())["tests"]
    fired = {case["alertname"] for test in tested for case in test["alert_rule_test"] if case["exp_alerts"]}
    rules = yaml.safe_load((MONITORING / "media-lake.rules.yaml").read_text())["groups"]
    assert fired == {rule["alert"] for group in rules for rule in group["rules"] if "alert" in rule}


def test_ffmpeg_reports_its_progress_as_it_writes(tmp_path) -> None:
    tone = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=30", str(tone)], check=True)
    paced = ["-v", "error", "-readrate", "10", "-i", str(tone), "-af", "volume=0.5", "-f", "null", "-"]  # 3 s
    heard: list[tuple[str, Progress]] = []
    token = PROGRESS_LISTENER.set(lambda task, progress: heard.append((task, progress)))
    try:
        run_ffmpeg(["-v", "error", "-i", str(tone), "-af", "volume=0.5", "-f", "wav", "-y", str(tmp_path / "o.wav")])
        assert not heard  # a call without a task reports nothing
        run_ffmpeg(paced, task="halve")
    finally:
        PROGRESS_LISTENER.reset(token)
    assert {task for task, _ in heard} == {"halve"}
    reports = [progress for _, progress in heard]
    assert len(reports) >= 2 and [r.ended for r in reports] == [False] * (len(reports) - 1) + [True]
    assert reports[-1].out_seconds == pytest.approx(30.0, abs=0.05) and reports[-1].speed > 0
    assert [r.out_seconds for r in reports] == sorted(r.out_seconds for r in reports)
    assert 0 < reports[0].out_seconds < 30

    def broken(task, progress):
        raise RuntimeError("a listener that fails")

    token = PROGRESS_LISTENER.set(broken)
    try:
        run_ffmpeg(["-v", "error", "-i", str(tone), "-f", "null", "-"], task="halve")  # the call still succeeds
        with pytest.raises(MediaToolError, match="exited with"):
            run_ffmpeg(["-v", "error", "-i", str(tmp_path / "missing.wav"), "-f", "null", "-"], task="halve")
    finally:
        PROGRESS_LISTENER.reset(token)


def test_an_ffmpeg_killed_midway_leaves_no_call_running(dagster_env, tmp_path) -> None:
    """SIGKILL an ffmpeg call after its first report: the stage's report ends anyway, so the
    exporter does not show a call running forever."""
    tone = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=60", str(tone)], check=True)
    paced = ["-v", "error", "-readrate", "5", "-i", str(tone), "-f", "null", "-"]  # 12 s unless killed
    instance, run_id = get_instance(), str(uuid.uuid4())  # reports are keyed by run id alone

    def kill_ffmpeg_after_its_first_report():
        wait_for(lambda: running(instance, [run_id])[0], 60, "a first report", interval=0.1)
        (child,) = [pid for pid in _children(os.getpid()) if Path(f"/proc/{pid}/comm").read_text().strip() == "ffmpeg"]
        os.kill(child, signal.SIGKILL)

    killer = threading.Thread(target=kill_ffmpeg_after_its_first_report)
    with pytest.raises(MediaToolError, match="exited with -9"):
        with reporting(instance, run_id, "normalized_audio", 60.0):
            killer.start()
            run_ffmpeg(paced, task="loudnorm")
    killer.join()
    assert running(instance, [run_id]) == ([], 0)
    (stored,) = instance.run_storage.get_cursor_values({key(run_id, "normalized_audio")}).values()
    last = Report(**json.loads(stored))
    assert last.ended and last.task == "loudnorm" and 0 <= last.out_seconds < 60


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def test_a_running_normalization_shows_its_ffmpeg_progress(dagster_env, tmp_path) -> None:
    """A real `media-lake materialize` of a 30-minute episode, frozen (SIGSTOP) while its ffmpeg
    has reported and not finished: the scrape shows that call as the stored report says; once the
    run ends, no call is running."""
    long = tmp_path / "long.flac"
    command = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1800", "-ar", "48000"]
    subprocess.run([*command, str(long)], check=True)
    instance, _, _, episode = register_episode(dagster_env, long)
    port = free_port()
    exporter = _serve(port, tmp_path / "exporter.log")
    selection = ["--select=raw_media", "--select=normalized_audio"]
    run = subprocess.Popen(
        [sys.executable, "-m", "media_assets.cli", "materialize", "--episode", episode, *selection],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        report = _frozen_while_ffmpeg_runs(instance, episode, run)
        try:
            samples = _samples(_scrape(port))
        finally:
            os.killpg(run.pid, signal.SIGCONT)
        labels = {"stage": "normalized_audio", "task": report.task}
        assert _value(samples, "media_lake_ffmpeg_running", **labels) == 1
        assert _value(samples, "media_lake_ffmpeg_done_seconds", **labels) == pytest.approx(report.out_seconds)
        assert _value(samples, "media_lake_ffmpeg_total_seconds", **labels) == pytest.approx(1800.0, abs=0.05)
        assert _value(samples, "media_lake_ffmpeg_least_done_ratio", **labels) == pytest.approx(report.done_ratio)
        assert _value(samples, "media_lake_ffmpeg_speed", **labels) == pytest.approx(report.speed or 0.0)
        assert _value(samples, "media_lake_ffmpeg_report_age_seconds", **labels) >= 0
        out, _ = run.communicate(timeout=600)
        ended = json.loads(out)
        assert ended["status"] == "materialized"
        after = _samples(_scrape(port))
        assert _value(after, "media_lake_ffmpeg_running") == 0
        (stored,) = instance.run_storage.get_cursor_values({key(ended["run_id"], "normalized_audio")}).values()
        last = Report(**json.loads(stored))  # the normalization's last call, to its end
        assert (last.task, last.ended, last.out_seconds) == ("loudnorm", True, pytest.approx(1800.0, abs=0.05))
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        stop(exporter)


def _frozen_while_ffmpeg_runs(instance, episode: str, run: subprocess.Popen) -> Report:
    """Freeze the command (its whole process group: the run and its ffmpeg) as soon as the
    episode's normalization has stored a report of a call still running; that report."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        runs = [r.run_id for r in started if r.tags.get("dagster/partition") == episode]
        if runs and running(instance, runs)[0]:
            os.killpg(run.pid, signal.SIGSTOP)
            (report,) = running(instance, runs)[0] or [None]  # read again, frozen
            if report is not None:
                return report
            os.killpg(run.pid, signal.SIGCONT)  # the call ended in between: wait for the next one
        time.sleep(0.05)
    raise AssertionError("the normalization never stored a report of a running ffmpeg call")
