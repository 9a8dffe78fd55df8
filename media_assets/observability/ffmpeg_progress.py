"""Progress of the ffmpeg calls a step makes (`-progress`: media seconds written, speed), kept
where the exporter reads it, whatever process or pod runs the step: one key per run and stage in
the instance's key-value store (the table of sensor cursors). Its writes are atomic per key; run
tags are not (an update rewrites the whole run, and two steps would overwrite each other's)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import dagster as dg

from media_assets.lib.media.media_tools import PROGRESS_LISTENER, Progress
from media_assets.lib.stages import STAGES

KEY_PREFIX = "media-lake/ffmpeg"
REPORT_SECONDS = 2.0  # at most one write per step this often, plus each call's first and last report
FFMPEG_STAGES = tuple(stage.name for stage in STAGES if "ffmpeg" in stage.kinds)
RUNS_PER_QUERY = 100
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    stage: str
    task: str  # the ffmpeg call: loudness_measure, loudnorm, h264_encode, mp3_encode...
    out_seconds: float
    total_seconds: float | None  # the episode's audio length, when known
    speed: float | None
    ended: bool
    at: float  # unix time of the report

    @property
    def done_ratio(self) -> float | None:
        return min(self.out_seconds / self.total_seconds, 1.0) if self.total_seconds else None


def key(run_id: str, stage: str) -> str:
    return f"{KEY_PREFIX}/{run_id}/{stage}"


class StoredProgress:
    """A PROGRESS_LISTENER that stores a step's reports, no more often than REPORT_SECONDS. A
    report that cannot be stored is dropped (and said once): progress never fails a stage."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, stage: str, total_seconds: float | None):
        self.instance, self.key, self.stage, self.total_seconds = instance, key(run_id, stage), stage, total_seconds
        self.last: Report | None = None
        self._stored_at, self._warned = 0.0, False

    def __call__(self, task: str, progress: Progress) -> None:
        now = time.time()
        if self.last and task == self.last.task and not progress.ended and now - self._stored_at < REPORT_SECONDS:
            return
        figures = (progress.out_seconds, self.total_seconds, progress.speed, progress.ended)
        self.store(Report(self.stage, task, *figures, now))

    def store(self, report: Report) -> None:
        self.last, self._stored_at = report, report.at
        try:
            self.instance.run_storage.set_cursor_values({self.key: json.dumps(asdict(report))})
        except Exception:  # noqa: BLE001
            if not self._warned:
                LOG.warning("ffmpeg progress of %s not stored", self.key, exc_info=True)
                self._warned = True

    def close(self) -> None:
        """A call that ended without its last report (killed, failed) ends here."""
        if self.last and not self.last.ended:
            self.store(replace(self.last, ended=True, at=time.time()))


@contextlib.contextmanager
def reporting(instance: dg.DagsterInstance, run_id: str, stage: str, total_seconds: float | None) -> Iterator[None]:
    """Store the progress of the ffmpeg calls made inside the block."""
    listener = StoredProgress(instance, run_id, stage, total_seconds)
    token = PROGRESS_LISTENER.set(listener)
    try:
        yield
    finally:
        PROGRESS_LISTENER.reset(token)
        listener.close()


def running(instance: dg.DagsterInstance, run_ids: list[str]) -> tuple[list[Report], int]:
    """The last report of every ffmpeg call still running in these runs, and how many stored
    reports could not be read."""
    reports, unreadable = [], 0
    for start in range(0, len(run_ids), RUNS_PER_QUERY):
        keys = {key(run_id, stage) for run_id in run_ids[start : start + RUNS_PER_QUERY] for stage in FFMPEG_STAGES}
        for value in instance.run_storage.get_cursor_values(keys).values():
            try:
                reports.append(Report(**json.loads(value)))
            except (TypeError, ValueError):
                unreadable += 1  # another version's shape, or not JSON
    return [report for report in reports if not report.ended], unreadable
