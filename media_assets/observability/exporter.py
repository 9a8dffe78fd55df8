"""The Prometheus collector: the Dagster instance and the lake, read on each scrape.

Open-source Dagster has no metrics endpoint (dagster issue 4480), and dagster-prometheus pushes
from inside runs, so runs that crash or wait in the queue never report. This collector reads
durable state instead, on every scrape:

- counts that only grow (stage materializations, their real-time factors and quality figures,
  finished runs, step failures and retries, check results) are tallied from the event log
  (lib/metrics.Tally), read forward from storage-id cursors: a scrape reads only what is new, and
  a restarted exporter reads the log from the start and reaches the same totals;
- step failures, retries and check results are read from each run's own log once it has ended
  (the embedded SQLite storage keeps one database per run and indexes only asset events across
  runs), so they appear when their run ends;
- states (runs queued or in flight, pool slots, daemon heartbeats, sensor ticks) are read as they
  are now;
- dead letters, registrations and duplicates are read from the lake; a record is re-read only
  when its listing token changed.

Label values come from declared sets (stages, compute classes, jobs, statuses, failure classes
and reasons, check names, pools, daemons, sensors): never episode or run ids.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import pkgutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping

import dagster as dg
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.event_api import RunStatusChangeRecordsFilter
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.lib.core import contracts
from media_assets.lib.core.dead_letters import PREFIX as DEAD_LETTER_PREFIX
from media_assets.lib.core.errors import ContractViolation, QualityGateFailed, failure_class
from media_assets.lib.core.lake import DUPLICATES_PREFIX, LakeStore
from media_assets.lib.media.ingest import REGISTRATION
from media_assets.lib.metrics import DISTRIBUTION_SUFFIX, Histogram, Materialization, Tally
from media_assets.lib.stages import BY_NAME, STAGES
from media_assets.observability import ffmpeg_progress
from media_assets.observability.ffmpeg_progress import REPORT_SECONDS
from media_assets.observability.queues import queue_depths

PREFIX = "media_lake"
LOG = logging.getLogger(__name__)
PAGE = 1000  # events per storage query
SETTLE_SECONDS = 60.0  # events older than this are taken to be committed in storage-id order
LIVE_STATUSES = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
RUN_END_EVENTS = {
    dg.DagsterEventType.RUN_SUCCESS: "SUCCESS",
    dg.DagsterEventType.RUN_FAILURE: "FAILURE",
    dg.DagsterEventType.RUN_CANCELED: "CANCELED",
}
RUN_LOG_EVENTS = {
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_UP_FOR_RETRY,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}
LOUDNESS_CHECK = ("normalized_audio", "loudness")
# A step whose blocking gate failed is failed by Dagster (DagsterAssetCheckFailedError), after the
# stage dead-lettered it as this error.
BLOCKING_GATE = QualityGateFailed("a blocking quality gate failed")


class EventStream:
    """One kind of event, read forward by storage id; each id is taken once.

    PostgreSQL can commit event N after event N+1 (two runs writing at once), so events younger
    than SETTLE_SECONDS are read again on the next scrape and the ones already taken are skipped;
    the cursor only moves past ids older than that."""

    def __init__(self, fetch):
        self._fetch = fetch  # after_storage_id -> EventRecordsResult, ascending
        self._cursor: int | None = None  # every id up to here is taken
        self._taken: dict[int, float] = {}  # ids above the cursor already taken -> their timestamps

    def unread(self) -> list[dg.EventLogRecord]:
        found, after = [], self._cursor
        while True:
            result = self._fetch(after)
            found += [r for r in result.records if r.storage_id not in self._taken]
            if not result.has_more or not result.records:
                return found
            after = result.records[-1].storage_id

    def take(self, record: dg.EventLogRecord) -> None:
        self._taken[record.storage_id] = record.timestamp

    def settle(self, now: float) -> None:
        old = [storage_id for storage_id, stamp in self._taken.items() if stamp < now - SETTLE_SECONDS]
        if old:
            self._cursor = max(old)
            self._taken = {i: stamp for i, stamp in self._taken.items() if i > self._cursor}


class EventFeed:
    """The instance's event log, read forward into a Tally.

    An event is taken (never read again) once tallied. A record the tally cannot read (written by
    another version) is skipped and counted; a storage error leaves the rest for the next scrape."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.tally = Tally()
        self.skipped = 0  # events that could not be read
        self._materializations = {
            stage.name: EventStream(functools.partial(_materializations_after, instance, stage.name))
            for stage in STAGES
        }
        self._run_ends = {
            status: EventStream(functools.partial(_run_ends_after, instance, kind))
            for kind, status in RUN_END_EVENTS.items()
        }
        self._runs_tallied: set[str] = set()  # a run can be reported failed twice (two reapers)
        self._instance = instance

    def update(self) -> None:
        # Run ends first, then materializations: every materialization of a run read as ended is
        # then read too, so its episode's audio length is known when the run is tallied.
        ended = [(status, record) for status, stream in self._run_ends.items() for record in stream.unread()]
        for stage, stream in self._materializations.items():
            for record in stream.unread():
                with self._unless_malformed():
                    self.tally.materialized(_materialization(stage, record))
                stream.take(record)
        runs = {
            r.dagster_run.run_id: r
            for chunk in _chunks(sorted({record.run_id for _, record in ended}), 100)
            for r in self._instance.get_run_records(filters=dg.RunsFilter(run_ids=chunk))
        }
        for status, record in ended:
            if record.run_id in runs and record.run_id not in self._runs_tallied:
                logs = self._instance.all_logs(record.run_id, of_type=RUN_LOG_EVENTS)
                with self._unless_malformed():
                    self._tally_run(runs[record.run_id], status, logs)
                self._runs_tallied.add(record.run_id)
            self._run_ends[status].take(record)
        now = time.time()
        for stream in [*self._materializations.values(), *self._run_ends.values()]:
            stream.settle(now)

    @contextlib.contextmanager
    def _unless_malformed(self) -> Iterator[None]:
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError):
            self.skipped += 1  # a record of an unexpected shape: counted, never retried

    def _tally_run(self, record: dg.RunRecord, status: str, logs) -> None:
        for entry in logs:
            event = entry.dagster_event
            if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
                self.tally.step_retried(event.step_key)
            elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
                self.tally.step_failed(event.step_key, *_failure_labels(event.event_specific_data))
            else:
                evaluation = event.event_specific_data
                self.tally.checked(evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.passed)
        run = record.dagster_run
        seconds = record.end_time - record.start_time if record.start_time and record.end_time else None
        self.tally.run_ended(run.run_id, run.job_name, status, seconds, run.tags.get("dagster/partition"))


def _materializations_after(instance: dg.DagsterInstance, stage: str, after: int | None):
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey(stage), after_storage_id=after)
    return instance.fetch_materializations(records_filter, limit=PAGE, ascending=True)


def _run_ends_after(instance: dg.DagsterInstance, kind: dg.DagsterEventType, after: int | None):
    records_filter = RunStatusChangeRecordsFilter(event_type=kind, after_storage_id=after)
    return instance.fetch_run_status_changes(records_filter, limit=PAGE, ascending=True)


def _materialization(stage: str, record: dg.EventLogRecord) -> Materialization:
    materialization = record.asset_materialization
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    return Materialization(
        stage=stage,
        episode_id=materialization.partition or "",
        run_id=record.run_id,
        skipped=bool(metadata.get("skipped_unchanged")),
        stage_seconds=metadata.get("stage_seconds"),
        audio_seconds=metadata.get("audio_seconds"),
        distributions={
            name.removesuffix(DISTRIBUTION_SUFFIX): (value["counts"], value["sum"])
            for name, value in metadata.items()
            if name.endswith(DISTRIBUTION_SUFFIX)
        },
    )


def _failure_labels(data) -> tuple[str, str, str]:
    """(failure class, reason, error type) of a STEP_FAILURE: what the stage put on its Failure;
    for a blocking gate, the dead letter's; else the error's class (a crash outside the stage)."""
    metadata = {k: v.value for k, v in (data.user_failure_data.metadata if data.user_failure_data else {}).items()}
    error_type = data.error.cls_name if data.error else "unknown"
    if "reason" in metadata:
        return metadata.get("failure_class", "unknown"), metadata["reason"], metadata.get("error_type", error_type)
    if error_type == "DagsterAssetCheckFailedError":
        return failure_class(BLOCKING_GATE), BLOCKING_GATE.reason, type(BLOCKING_GATE).__name__
    return "unknown", "unknown", error_type


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LakeRecords:
    """JSON records under a lake prefix, re-read only when their listing token changes; a record
    that cannot be read or breaks its schema is left out and counted in `unreadable`."""

    def __init__(self, prefix: str, schema: str):
        self.prefix, self.schema = prefix, schema
        self.unreadable = 0
        self._seen: dict[str, tuple[str, dict | None]] = {}  # key -> (token, record or None)

    def read(self, lake: LakeStore) -> list[dict]:
        listing = {k: token for k, token in lake.listing(self.prefix).items() if k.endswith(".json")}
        for key, token in listing.items():
            if self._seen.get(key, ("",))[0] != token:
                try:
                    record = contracts.load_document(self.schema, lake.get_bytes(key))
                except (ContractViolation, ValueError, FileNotFoundError):
                    record = None  # broken, or removed since the listing
                self._seen[key] = (token, record)
        self._seen = {key: self._seen[key] for key in listing}
        self.unreadable = sum(1 for _, record in self._seen.values() if record is None)
        return [record for _, record in self._seen.values() if record is not None]


@functools.cache
def declared_sensors() -> dict[str, bool]:
    """The code location's sensors (defs/orchestration/), each with whether its code starts it."""
    import media_assets.defs.orchestration as package

    modules = [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]
    return {
        found.name: found.default_status == dg.DefaultSensorStatus.RUNNING
        for module in modules
        for found in vars(module).values()
        if isinstance(found, dg.SensorDefinition)
    }


def sensor_started(started_by_code: bool, state: InstigatorState | None) -> bool:
    """Started by hand (RUNNING) or by its code: the daemon stores DECLARED_IN_CODE for a sensor
    its code starts, and nothing before its first look, so both follow what the code declares now
    (one the code no longer declares, or now declares stopped, is not started)."""
    if state is None or state.status == InstigatorStatus.DECLARED_IN_CODE:
        return started_by_code
    return state.status == InstigatorStatus.RUNNING


class PipelineCollector(Collector):
    """Every media-lake metric, computed on each scrape (one scrape at a time)."""

    def __init__(self, instance: dg.DagsterInstance, lake: LakeStore, celery_broker: str | None = None):
        self.instance, self.lake, self.celery_broker = instance, lake, celery_broker
        self.feed = EventFeed(instance)
        self.dead_letters = LakeRecords(DEAD_LETTER_PREFIX, "dead_letter")
        self.unreadable_progress = 0  # stored ffmpeg reports of running calls that could not be read
        self._lock = threading.Lock()
        # each section is read on its own: one that fails (storage down, a bad record) leaves the
        # others served and reports itself with media_lake_exporter_section_up 0
        self._sections = {
            "events": self._event_families,
            "runs": self._run_families,
            "pools": self._pool_families,
            "daemons": self._daemon_families,
            "sensors": self._sensor_families,
            "lake": self._lake_families,
            "ffmpeg": self._ffmpeg_families,
            "queues": self._queue_families,
        }

    def describe(self) -> list:
        return []  # nothing is read when the collector is registered

    def collect(self) -> Iterator:
        with self._lock:
            started = time.perf_counter()
            families, up = (
                [],
                GaugeMetricFamily(
                    f"{PREFIX}_exporter_section_up", "1 when the section was read in this scrape.", labels=["section"]
                ),
            )
            for section, read in self._sections.items():
                try:
                    families += list(read())
                except Exception:  # noqa: BLE001  (reported as a metric and logged; the rest is served)
                    LOG.exception("media-lake metrics: reading %s failed", section)
                    up.add_metric([section], 0.0)
                else:
                    up.add_metric([section], 1.0)
            skipped = CounterMetricFamily(
                f"{PREFIX}_exporter_unreadable_records",
                "Events and lake records left out because they could not be read.",
                labels=["source"],
            )
            skipped.add_metric(["event_log"], self.feed.skipped)
            skipped.add_metric(["dead_letters"], self.dead_letters.unreadable)
            skipped.add_metric(["ffmpeg_progress"], self.unreadable_progress)
            scrape = GaugeMetricFamily(
                f"{PREFIX}_exporter_scrape_duration_seconds",
                "Seconds this scrape took to read the instance and the lake.",
            )
            scrape.add_metric([], time.perf_counter() - started)
        yield from families
        yield from (up, skipped, scrape)

    # --- tallied from the event log -------------------------------------------------

    def _event_families(self) -> Iterator:
        self.feed.update()
        tally = self.feed.tally
        stage_labels = ["stage", "compute_class"]

        def of_stage(stage: str) -> list[str]:
            return [stage, BY_NAME[stage].compute_class if stage in BY_NAME else "none"]

        yield _family(
            CounterMetricFamily, f"{PREFIX}_stage_materializations",
            "Stage materializations; work=skipped: outputs were up to date.", [*stage_labels, "work"],
            {(*of_stage(stage), work): count for (stage, work), count in tally.materializations.items()},
        )  # fmt: skip
        yield _histograms(
            f"{PREFIX}_stage_duration_seconds", "Seconds a stage's step took (work done, quality gates included).",
            stage_labels, {tuple(of_stage(s)): h for s, h in tally.stage_seconds.items()},
        )  # fmt: skip
        yield _histograms(
            f"{PREFIX}_stage_real_time_factor", "Stage seconds per second of the episode's audio (work done).",
            stage_labels, {tuple(of_stage(s)): h for s, h in tally.stage_rtf.items()},
        )  # fmt: skip
        yield _family(
            CounterMetricFamily, f"{PREFIX}_stage_audio_seconds", "Seconds of audio a stage has processed (work done).",
            stage_labels, {tuple(of_stage(stage)): seconds for stage, seconds in tally.audio_seconds.items()},
        )  # fmt: skip
        for name, histogram in sorted(tally.quality.items()):
            yield _histograms(
                f"{PREFIX}_{name}", f"Distribution of {name.replace('_', ' ')} over every episode's items.",
                [], {(): histogram},
            )  # fmt: skip
        yield _family(
            CounterMetricFamily, f"{PREFIX}_asset_checks", "Quality gate results by stage, check and outcome.",
            ["stage", "check", "outcome"], tally.checks,
        )  # fmt: skip
        passed, failed = (tally.checks[(*LOUDNESS_CHECK, outcome)] for outcome in ("passed", "failed"))
        compliance = GaugeMetricFamily(
            f"{PREFIX}_loudness_compliance_ratio",
            "Share of normalized audio whose loudness gate passed (integrated loudness within tolerance, "
            "true peak under the ceiling).",
        )
        if passed + failed:
            compliance.add_metric([], passed / (passed + failed))
        yield compliance
        yield _family(
            CounterMetricFamily, f"{PREFIX}_step_failures",
            "Steps failed for good (after their retries), by stage, failure class, reason and error type.",
            [*stage_labels, "failure_class", "reason", "error_type"],
            {(*of_stage(stage), *rest): count for (stage, *rest), count in tally.step_failures.items()},
        )  # fmt: skip
        yield _family(
            CounterMetricFamily, f"{PREFIX}_step_retries", "Step retries (a transient error met).", stage_labels,
            {tuple(of_stage(stage)): count for stage, count in tally.step_retries.items()},
        )  # fmt: skip
        yield _family(
            CounterMetricFamily, f"{PREFIX}_runs_finished", "Runs that ended, by job and status.", ["job", "status"],
            tally.runs_ended,
        )  # fmt: skip
        yield _histograms(
            f"{PREFIX}_run_duration_seconds", "Seconds from run start to run end.", ["job", "status"], tally.run_seconds
        )
        yield _histograms(
            f"{PREFIX}_episode_seconds_per_audio_hour",
            "End-to-end seconds of a successful episode run per hour of its audio (3600 is real time).",
            [], {(): tally.seconds_per_audio_hour},
        )  # fmt: skip

    # --- state now ------------------------------------------------------------------

    def _run_families(self) -> Iterator:
        live = Counter(
            (r.dagster_run.job_name, r.dagster_run.status.value)
            for r in self.instance.get_run_records(filters=dg.RunsFilter(statuses=list(LIVE_STATUSES)))
        )
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_runs", "Runs queued or in flight, by job and status.", ["job", "status"], live
        )
        oldest = self.instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]),
            limit=1,
            order_by="create_timestamp",
            ascending=True,
        )
        waited = GaugeMetricFamily(
            f"{PREFIX}_run_queue_oldest_age_seconds", "Seconds the oldest queued run has waited."
        )
        waited.add_metric([], time.time() - oldest[0].create_timestamp.timestamp() if oldest else 0.0)
        yield waited

    def _pool_families(self) -> Iterator:
        storage = self.instance.event_log_storage
        slots = GaugeMetricFamily(f"{PREFIX}_pool_slots", "Slots of a compute class's pool.", labels=["pool"])
        in_use = GaugeMetricFamily(f"{PREFIX}_pool_slots_in_use", "Pool slots held by running steps.", labels=["pool"])
        waiting = GaugeMetricFamily(f"{PREFIX}_pool_steps_waiting", "Steps waiting for a pool slot.", labels=["pool"])
        for pool in COMPUTE_CLASSES:
            info = storage.get_concurrency_info(pool)
            slots.add_metric([pool], info.slot_count)
            in_use.add_metric([pool], info.active_slot_count)
            waiting.add_metric([pool], info.pending_step_count)
        yield from (slots, in_use, waiting)

    def _daemon_families(self) -> Iterator:
        healthy = GaugeMetricFamily(
            f"{PREFIX}_daemon_healthy", "1 when the daemon's heartbeat is recent.", labels=["daemon"]
        )
        beat = GaugeMetricFamily(
            f"{PREFIX}_daemon_last_heartbeat_timestamp_seconds",
            "Unix time of the daemon's last heartbeat.",
            labels=["daemon"],
        )
        for daemon, status in sorted(self.instance.get_daemon_statuses().items()):
            healthy.add_metric([daemon], 1.0 if status.healthy else 0.0)
            if status.last_heartbeat is not None:
                beat.add_metric([daemon], status.last_heartbeat.timestamp)
        yield from (healthy, beat)

    def _sensor_families(self) -> Iterator:
        running = GaugeMetricFamily(f"{PREFIX}_sensor_running", "1 when the sensor is started.", labels=["sensor"])
        tick_time = GaugeMetricFamily(
            f"{PREFIX}_sensor_last_tick_timestamp_seconds", "Unix time of the sensor's last tick.", labels=["sensor"]
        )
        tick_seconds = GaugeMetricFamily(
            f"{PREFIX}_sensor_last_tick_duration_seconds",
            "Seconds the sensor's last finished tick took.",
            labels=["sensor"],
        )
        tick_status = GaugeMetricFamily(
            f"{PREFIX}_sensor_last_tick_status",
            "1 for the status of the sensor's last tick.",
            labels=["sensor", "status"],
        )
        declared = declared_sensors()
        states = self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        stored = {state.instigator_name: state for state in states}
        for name in sorted(set(declared) | set(stored)):
            state = stored.get(name)
            running.add_metric([name], 1.0 if sensor_started(declared.get(name, False), state) else 0.0)
            if state is None:
                continue
            ticks = self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            if ticks:
                tick_time.add_metric([name], ticks[0].timestamp)
                tick_status.add_metric([name, ticks[0].status.value], 1.0)
                if ticks[0].end_timestamp is not None:
                    tick_seconds.add_metric([name], ticks[0].end_timestamp - ticks[0].timestamp)
        yield from (running, tick_time, tick_seconds, tick_status)

    def _ffmpeg_families(self) -> Iterator:
        started = self.instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        reports, self.unreadable_progress = ffmpeg_progress.running(
            self.instance, [r.dagster_run.run_id for r in started]
        )
        now, labels = time.time(), ["stage", "task"]
        by_call: dict[tuple, list[ffmpeg_progress.Report]] = {}
        for report in reports:
            by_call.setdefault((report.stage, report.task), []).append(report)
        known = {call: [r for r in found if r.total_seconds] for call, found in by_call.items()}
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_ffmpeg_running", "ffmpeg calls running now, by stage and task.",
            labels, {call: len(found) for call, found in by_call.items()},
        )  # fmt: skip
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_ffmpeg_speed",
            "Summed speed of the running ffmpeg calls (media seconds per wall second, as ffmpeg reports).",
            labels, {call: sum(r.speed or 0.0 for r in found) for call, found in by_call.items()},
        )  # fmt: skip
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_ffmpeg_done_seconds",
            "Media seconds written by the running ffmpeg calls whose episode length is known.",
            labels, {call: sum(r.out_seconds for r in found) for call, found in known.items() if found},
        )  # fmt: skip
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_ffmpeg_total_seconds",
            "Episode seconds of the same calls: done / total is the share done.",
            labels, {call: sum(r.total_seconds for r in found) for call, found in known.items() if found},
        )  # fmt: skip
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_ffmpeg_least_done_ratio", "Share done of the furthest-behind running call.",
            labels, {call: min(r.done_ratio for r in found) for call, found in known.items() if found},
        )  # fmt: skip
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_ffmpeg_report_age_seconds",
            f"Seconds since the oldest running call last reported (one reports every {REPORT_SECONDS:g} s).",
            labels, {call: now - min(r.at for r in found) for call, found in by_call.items()},
        )  # fmt: skip

    def _queue_families(self) -> Iterator:
        """Served with no samples when Celery is not the executor."""
        depths = queue_depths(self.celery_broker, COMPUTE_CLASSES) if self.celery_broker else {}
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_celery_queue_depth", "Steps waiting on a compute class's Celery queue.",
            ["queue"], {(queue,): depth for queue, depth in depths.items()},
        )  # fmt: skip

    # --- the lake -------------------------------------------------------------------

    def _lake_families(self) -> Iterator:
        records = self.dead_letters.read(self.lake)
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_dead_letters",
            "Dead-letter records by stage, reason and state (open or resolved).", ["stage", "reason", "state"],
            Counter((r["stage"], r["reason"], "open" if r["resolved_at"] is None else "resolved") for r in records),
        )  # fmt: skip
        rejected = Counter(("rejected", r["reason"]) for r in records if r["stage"] == "ingest")
        yield _family(
            GaugeMetricFamily, f"{PREFIX}_inputs",
            "Uploads in the lake by outcome (registered, duplicate, rejected) and reason (a rejection's, as now).",
            ["outcome", "reason"],
            {
                ("registered", ""): len(self.lake.listing(REGISTRATION)),
                ("duplicate", ""): len(self.lake.listing(DUPLICATES_PREFIX)),
                **rejected,
            },
        )  # fmt: skip


def _family(kind, name: str, documentation: str, labels: list[str], values: Mapping[tuple, float]):
    """A counter or gauge family with one sample per label values."""
    family = kind(name, documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


def _histograms(name: str, documentation: str, labels: list[str], histograms: dict[tuple, Histogram]):
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, histogram in sorted(histograms.items()):
        family.add_metric(list(label_values), histogram.cumulative(), histogram.total)
    return family
