"""Hands-off: a real `dagster-daemon` watches the inbox; complete uploads become runs that finish,
a bad upload becomes a dead letter, a re-upload of the same bytes starts nothing, and a file still
being written is not taken until it is complete. Nobody calls materialize."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from media_assets.demo import samples
from media_assets.instance import get_instance
from media_assets.lib.core import dead_letters
from media_assets.lib.core.identity import episode_id_for
from media_assets.lib.core.lake import LocalStore, document_key

REPO = Path(__file__).resolve().parents[1]
DONE = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def _wait(condition, timeout: float, what: str, daemon: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert daemon.poll() is None, f"the daemon exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {log.read_text()[-3000:]}"
        time.sleep(2)
    return value


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
    instance = get_instance()  # writes dagster.yaml (queued runs, pools) into the test's DAGSTER_HOME
    good = shutil.copy(media["speech"], inbox / "good.wav")
    samples.sidecar(Path(good))  # complete at once
    samples.text_as_media(inbox / "bad.mp4")
    mp3 = media["mp3"].read_bytes()
    writer = _upload_slowly(inbox / "slow.mp3", mp3, seconds=50)  # changes at every look while it lasts

    log = dagster_env / "daemon.log"
    env = {**os.environ, "MEDIA_LAKE_ASR_MODEL": "tiny.en"}
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def runs():
            return instance.get_runs(filters=dg.RunsFilter(job_name="episode_job"))

        first = _wait(lambda: runs(), 240, "the first run", daemon, log)
        assert len(first) == 1  # the good file, complete at once by its sidecar
        letters = _wait(lambda: dead_letters.list_records(LocalStore(lake_root)), 240, "a dead letter", daemon, log)
        (record,) = letters  # the bad file, at its second look
        assert record["path"].endswith("bad.mp4") and record["reason"] == "unreadable_media"
        assert len(runs()) == 1  # the slow upload is still changing
        writer.join()
        second = _wait(lambda: len(runs()) == 2 and runs(), 240, "the run of the finished upload", daemon, log)
        whole = episode_id_for(hashlib.sha256(mp3).hexdigest())
        assert whole in {r.tags["dagster/partition"] for r in second}  # taken whole, not half-written

        shutil.copy(media["speech"], inbox / "good again.wav")  # the same bytes: no run
        finished = _wait(lambda: all(r.status in DONE for r in runs()) and runs(), 600, "runs to end", daemon, log)
        assert [r.status for r in finished] == [dg.DagsterRunStatus.SUCCESS] * 2
        time.sleep(65)  # two more ticks: the re-upload is looked at twice and ingested as a duplicate
        assert len(runs()) == 2
        store = LocalStore(lake_root)
        assert all(store.exists(document_key("distribution", r.tags["dagster/partition"])) for r in runs())
        assert len(dead_letters.list_records(store)) == 1
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
