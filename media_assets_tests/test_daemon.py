"""Hands-off on the embedded default (SQLite, a folder inbox): a real `dagster-daemon` watches the
inbox; complete uploads become runs that finish, a bad upload becomes a dead letter, a re-upload
of the same bytes starts nothing, and a file still being written is not taken until it is
complete. Nobody calls materialize. (test_production.py does the same on PostgreSQL and S3.)"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from media_assets.demo import samples
from media_assets.instance import get_instance
from media_assets.lib.core import dead_letters
from media_assets.lib.core.lake import LocalStore, document_key
from media_assets.lib.media.ingest import known_episode_id
from media_assets.observability.exporter import PipelineCollector
from media_assets_tests.services import start_dagster, stop, wait_for
from media_assets_tests.test_metrics import _value, collected

INTERVAL = 10  # seconds between inbox looks (30 by default)
DONE = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def _upload_slowly(path: Path, data: bytes, seconds: float) -> threading.Thread:
    """Write `data` to `path` in pieces over `seconds`, as a slow upload does."""

    def write() -> None:
        pieces = 15
        with path.open("wb") as out:
            for n in range(pieces):
                out.write(data[n * len(data) // pieces : (n + 1) * len(data) // pieces])
                out.flush()
                time.sleep(seconds / pieces)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


@pytest.mark.slow
def test_the_daemon_turns_uploads_into_runs_and_dead_letters(dagster_env, media, monkeypatch) -> None:
    inbox, lake_root = dagster_env / "inbox", dagster_env / "lake"
    inbox.mkdir()
    monkeypatch.setenv("MEDIA_LAKE_INBOX", str(inbox))
    monkeypatch.setenv("MEDIA_LAKE_INBOX_INTERVAL_SECONDS", str(INTERVAL))
    instance = get_instance()  # writes dagster.yaml (queued runs, pools) into the test's DAGSTER_HOME
    good = shutil.copy(media["speech"], inbox / "good.wav")
    samples.sidecar(Path(good))  # complete at once
    samples.text_as_media(inbox / "bad.mp4")
    mp3 = media["mp3"].read_bytes()
    writer = _upload_slowly(inbox / "slow.mp3", mp3, seconds=50)  # changes at every look while it lasts

    log = dagster_env / "daemon.log"
    daemon = start_dagster("dagster-daemon", "run", log=log)

    try:

        def runs():
            return instance.get_runs(filters=dg.RunsFilter(job_name="episode_job"))

        first = wait_for(lambda: runs(), 240, "the first run", alive=[daemon], log=log)
        assert len(first) == 1  # the good file, complete at once by its sidecar
        letters = wait_for(
            lambda: dead_letters.list_records(LocalStore(lake_root)), 240, "a dead letter", alive=[daemon], log=log
        )
        (record,) = letters  # the bad file, at its second look
        assert record["path"].endswith("bad.mp4") and record["reason"] == "unreadable_media"
        assert len(runs()) == 1  # the slow upload is still changing
        writer.join()
        second = wait_for(
            lambda: len(runs()) == 2 and runs(), 240, "the run of the finished upload", alive=[daemon], log=log
        )
        whole = known_episode_id(LocalStore(lake_root), hashlib.sha256(mp3).hexdigest())
        assert whole in {r.tags["dagster/partition"] for r in second}  # taken whole, not half-written

        shutil.copy(media["speech"], inbox / "good again.wav")  # the same bytes: no run
        finished = wait_for(
            lambda: all(r.status in DONE for r in runs()) and runs(), 600, "runs to end", alive=[daemon], log=log
        )
        assert [r.status for r in finished] == [dg.DagsterRunStatus.SUCCESS] * 2
        time.sleep(3 * INTERVAL)  # more ticks: the re-upload is looked at twice and ingested as a duplicate
        assert len(runs()) == 2
        store = LocalStore(lake_root)
        assert all(store.exists(document_key("distribution", r.tags["dagster/partition"])) for r in runs())
        assert len(dead_letters.list_records(store)) == 1

        # What `media-lake metrics serve` makes of it: the daemon beating, its sensors ticking (they
        # start from their code: no one started them by hand), the runs and every input.
        def scrape() -> dict:
            return collected(PipelineCollector(instance, store))

        wait_for(lambda: _value(scrape(), "media_lake_inputs", outcome="duplicate") == 1, 120, "the duplicate counted")
        scraped, now = scrape(), time.time()
        assert _value(scraped, "media_lake_daemon_healthy", daemon="SENSOR") == 1
        assert 0 <= now - _value(scraped, "media_lake_daemon_last_heartbeat_timestamp_seconds", daemon="SENSOR") < 120
        inbox = (("sensor", "inbox_sensor"),)
        assert scraped[("media_lake_sensor_running", inbox)] == 1
        assert 0 <= now - scraped[("media_lake_sensor_last_tick_timestamp_seconds", inbox)] < 120
        statuses = {dict(labels)["status"]: value for (name, labels), value in scraped.items()
                    if name == "media_lake_sensor_last_tick_status" and inbox[0] in labels}  # fmt: skip
        (status,) = [status for status, value in statuses.items() if value == 1]
        assert status in ("SUCCESS", "SKIPPED", "STARTED")  # STARTED: a tick under way, not finished yet
        if status != "STARTED":
            assert 0 <= scraped[("media_lake_sensor_last_tick_duration_seconds", inbox)] < 60
        assert _value(scraped, "media_lake_runs_finished_total", job="episode_job", status="SUCCESS") == 2
        assert _value(scraped, "media_lake_runs") == 0  # none queued or in flight
        assert _value(scraped, "media_lake_inputs", outcome="registered") == 2
        assert _value(scraped, "media_lake_inputs", outcome="rejected", reason="unreadable_media") == 1
    finally:
        stop(daemon)
