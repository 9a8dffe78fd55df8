"""Production mode, hands off, for real: a code server, `dagster-daemon` and `dagster-webserver` on a
PostgreSQL instance, the inbox and the lake on an S3 server on loopback (behind a proxy that can
take it off the network), an alert receiver. Thirty mixed uploads arrive in three waves while the
daemon and the webserver are restarted, a run's process is killed with SIGKILL and S3 goes away
until a step has met the outage. Every upload ends materialized, duplicate or dead-lettered, exactly; no stage of any
episode is materialized twice; one alert per dead letter."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.demo import samples
from media_assets.instance import get_instance
from media_assets.lib.core import dead_letters
from media_assets.lib.core.identity import sha256_file
from media_assets.lib.core.lake import document_key
from media_assets.lib.media.ingest import REGISTRATION, known_episode_id, read_registration
from media_assets.resources import LakeResource
from media_assets_tests.conftest import EPISODE_ASSETS, PG
from media_assets_tests.services import REPO, Receiver, TcpProxy, free_port, graphql, start_dagster, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(1800)]

UPLOADS, LAKE = "uploads", "lake"
INTERVAL = 10  # seconds between inbox looks (30 by default)
OUTAGE_SECONDS = 90  # at most; it ends once a step has asked for a retry, long before its retries run out
LIVE = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)


def upload(s3, items: list[samples.Upload], landed: dict[str, float]) -> None:
    for item in items:
        sidecar = item.path.with_name(item.path.name + ".sha256")
        if sidecar.exists():
            s3.upload_file(str(sidecar), UPLOADS, f"incoming/{item.name}.sha256")  # before: it is checked
        s3.upload_file(str(item.path), UPLOADS, f"incoming/{item.name}")
        landed[item.name] = time.time()


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its children, as the OOM killer or a node loss does."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    os.kill(pid, signal.SIGKILL)
    for child in children:
        kill_tree(int(child))


def test_thirty_uploads_survive_restarts_kills_and_an_s3_outage(
    dagster_env, postgres_db, s3, s3_endpoint, tmp_path, monkeypatch
) -> None:
    receiver = Receiver()
    proxy = TcpProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    for bucket in (UPLOADS, LAKE):
        s3.create_bucket(Bucket=bucket)
    env = {
        "DAGSTER_POSTGRES_URL": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{postgres_db}",
        "MEDIA_LAKE_ROOT": f"s3://{LAKE}/lake",
        "MEDIA_LAKE_INBOX": f"s3://{UPLOADS}/incoming",
        "MEDIA_LAKE_S3_ENDPOINT_URL": proxy.url,
        "MEDIA_LAKE_ALERT_WEBHOOK_URL": receiver.url,
        "MEDIA_LAKE_INBOX_INTERVAL_SECONDS": str(INTERVAL),
        "MEDIA_LAKE_MAX_CONCURRENT_RUNS": "2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    instance = get_instance()  # writes the production dagster.yaml and sets the pool limits
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.run_retries_enabled and not instance.run_retries_retry_on_asset_or_op_failure
    lake = LakeResource.from_env().store()

    uploads = samples.mixed_batch(tmp_path / "inputs")
    assert len(uploads) == 30
    bad_keys = {u.name for u in uploads if u.fate == "bad"}
    waves = [uploads[0:5] + uploads[12:14] + uploads[20:25], uploads[5:9] + uploads[14:17] + uploads[25:28]]
    waves.append([u for u in uploads if u not in waves[0] + waves[1]])
    landed: dict[str, float] = {}

    # Production topology: runs belong to a code server of their own, so restarting the daemon or
    # the webserver does not touch them.
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - grpc_server:\n"
        f"      host: 127.0.0.1\n      port: {grpc_port}\n      location_name: media_assets\n"
    )
    log = tmp_path / "services.log"
    with log.open("w") as out:
        code_server = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "api", "grpc", "-m", "media_assets.definitions"]
            + ["-h", "127.0.0.1", "-p", str(grpc_port)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    services = []

    def start_services():
        services[:] = [
            start_dagster("dagster-daemon", "run", workspace=workspace, log=log),
            start_dagster("dagster-webserver", "-h", "127.0.0.1", "-p", str(web_port), workspace=workspace, log=log),
        ]

    def episode_runs() -> list[dg.RunRecord]:
        return instance.get_run_records(filters=dg.RunsFilter(job_name="episode_job"))

    def succeeded() -> set[str]:
        return {r.dagster_run.tags["dagster/partition"] for r in episode_runs() if r.dagster_run.is_success}

    def alive():
        return [code_server, *services]

    try:
        upload(s3, waves[0], landed)
        start_services()
        wait_for(lambda: len(succeeded()) >= 2, 600, "two episodes done", alive=alive(), log=log)

        # Restart the daemon and the webserver mid-batch; the second wave lands while they are down.
        for process in services:
            stop(process)
        upload(s3, waves[1], landed)
        before = {r.dagster_run.run_id for r in episode_runs()}
        start_services()
        history = wait_for(
            lambda: _graphql_runs(web_port), 120, "the webserver after its restart", alive=alive(), log=log
        )
        assert before <= history  # the history is still there

        # A run's process dies with SIGKILL.
        owned = wait_for(
            lambda: [
                r.dagster_run
                for r in episode_runs()
                if r.dagster_run.status == dg.DagsterRunStatus.STARTED
                and "media-lake/pid" in r.dagster_run.tags
                and r.dagster_run.tags.get("media-lake/owner-run", r.dagster_run.run_id) == r.dagster_run.run_id
            ],
            600,
            "a started run",
            interval=0.5,
            alive=alive(),
            log=log,
        )
        killed = owned[0]
        kill_tree(int(killed.tags["media-lake/pid"]))

        # S3 goes away for 25 s while runs are in flight.
        wait_for(
            lambda: any(r.dagster_run.status == dg.DagsterRunStatus.STARTED for r in episode_runs()),
            600,
            "a run in flight",
            interval=0.5,
            alive=alive(),
            log=log,
        )
        proxy.outage()  # until a step has asked for a retry (so botocore's own retries did not hide it)
        outage_start = time.monotonic()
        wait_for(lambda: _retries(instance, episode_runs()), OUTAGE_SECONDS, "a step to meet the outage", interval=1)
        proxy.restore()
        print(f"S3 was down for {time.monotonic() - outage_start:.0f} s")
        upload(s3, waves[2], landed)

        new_bytes = {sha256_file(u.path) for u in uploads if u.fate == "new"}
        wait_for(
            lambda: (
                succeeded() >= {known_episode_id(lake, sha) for sha in new_bytes}
                and not [r for r in episode_runs() if r.dagster_run.status in LIVE]
            ),
            1200,
            "every good upload materialized",
            interval=5,
            alive=alive(),
            log=log,
        )
        time.sleep(3 * INTERVAL)  # the last uploads' ticks and the failure sensors have run
        expected = {known_episode_id(lake, sha) for sha in new_bytes}

        # The killed run: failed, its slots freed, retried (not dead-lettered) and succeeded.
        killed = instance.get_run_by_id(killed.run_id)
        assert killed.status == dg.DagsterRunStatus.FAILURE
        wait_for(lambda: not _held_slots(instance, killed.run_id), 120, "the killed run's slots to be freed")
        retry = [r.dagster_run for r in episode_runs() if r.dagster_run.parent_run_id == killed.run_id]
        assert len(retry) == 1 and retry[0].is_success

        # The outage: steps that met it failed as transient and were retried with growing delays.
        retried = Counter()
        for (_, step), waits in _retries(instance, episode_runs()).items():
            assert waits == sorted(waits), (step, waits)
            retried[step] += len(waits)
        assert retried, "no step met the S3 outage"
        print(f"steps retried through the S3 outage: {dict(retried)}")

        # Conservation: every upload is materialized, a duplicate or dead-lettered, exactly.
        registered = {key.split("episode_id=")[1].split("/")[0] for key in lake.list_keys(REGISTRATION)}
        assert registered == expected
        sources = {
            read_registration(lake, e)["source_uri"].removeprefix(f"s3://{UPLOADS}/incoming/") for e in registered
        }
        records = dead_letters.list_records(lake)
        rejected = {r["subject"].removeprefix(f"s3://{UPLOADS}/incoming/") for r in records if r["stage"] == "ingest"}
        duplicates = {
            u.name
            for u in uploads
            if u.name not in sources and known_episode_id(lake, sha256_file(u.path)) in registered
        }
        assert rejected == bad_keys
        assert {r["attempts"] for r in records if r["stage"] == "ingest"} == {1}  # permanent: one attempt each
        assert len(sources) + len(duplicates) + len(rejected) == len(uploads) == 30
        assert sources | duplicates | rejected == {u.name for u in uploads}, (sources, duplicates, rejected)
        assert all(lake.exists(document_key("distribution", e)) for e in registered)
        assert [r for r in records if r["resolved_at"] is None and r["stage"] != "ingest"] == []

        # Nothing processed twice: one materialization that did the work per stage and episode,
        # whatever happened. The exception is the killed run's step: SIGKILL after the step
        # committed its output to the lake, before Dagster recorded its materialization (that
        # step's work is then reported by no one) or its success (reported once), makes the retry
        # run the step again; it finds its output in the lake and reports it without the work.
        killed_episode = killed.tags["dagster/partition"]
        for asset in EPISODE_ASSETS:
            events = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
            worked = Counter(e.asset_materialization.partition for e in events if not _skipped(e))
            again = [(e.asset_materialization.partition, e.run_id) for e in events if _skipped(e)]
            assert set(again) <= {(killed_episode, retry[0].run_id)}, (asset, _history(instance, events))
            assert set(worked.values()) == {1}, (asset, _history(instance, events))
            unreported = {killed_episode} if again and killed_episode not in worked else set()
            assert set(worked) | unreported == expected, (asset, _history(instance, events))

        # One alert per dead letter, no more.
        assert sorted(b["record_id"] for b in receiver.bodies) == sorted(r["record_id"] for r in records)

        first_runs = [r for r in episode_runs() if r.dagster_run.parent_run_id is None]
        requested = sorted(r.create_timestamp.timestamp() - landed[_source_key(lake, r)] for r in first_runs)
        started = sorted(r.start_time - landed[_source_key(lake, r)] for r in first_runs)
        print(
            f"landing to run requested: median {requested[len(requested) // 2]:.1f} s, max {requested[-1]:.1f} s; "
            f"to run started (a queue of {len(first_runs)} runs, 2 at once): "
            f"median {started[len(started) // 2]:.1f} s, max {started[-1]:.1f} s"
        )
    finally:
        for process in [*services, code_server]:
            stop(process)
        proxy.close()
        receiver.close()
        shutil.rmtree(tmp_path / "inputs", ignore_errors=True)


def _retries(instance: dg.DagsterInstance, runs: list[dg.RunRecord]) -> dict[tuple[str, str], list[float]]:
    """(run id, step) -> the delays its retries asked for, in order."""
    delays: dict[tuple[str, str], list[float]] = {}
    for record in runs:
        run_id = record.dagster_run.run_id
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY):
            wait = entry.dagster_event.event_specific_data.seconds_to_wait
            delays.setdefault((run_id, entry.dagster_event.step_key), []).append(wait)
    return delays


def _skipped(event: dg.EventLogRecord) -> bool:
    return event.asset_materialization.metadata["skipped_unchanged"].value


def _history(instance: dg.DagsterInstance, events: list[dg.EventLogRecord]) -> list[tuple]:
    """Each materialization's episode, whether it skipped, and its run (status, parent run): what a
    failure of the nothing-processed-twice check needs to be told apart."""
    rows = []
    for event in events:
        run = instance.get_run_by_id(event.run_id)
        rows.append(
            (event.asset_materialization.partition, _skipped(event), event.run_id, run.status.value, run.parent_run_id)
        )
    return sorted(rows)


def _held_slots(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    info = [instance.event_log_storage.get_concurrency_info(pool) for pool in COMPUTE_CLASSES]
    return [slot.step_key for pool in info for slot in pool.claimed_slots if slot.run_id == run_id]


def _source_key(lake, record: dg.RunRecord) -> str:
    registration = read_registration(lake, record.dagster_run.tags["dagster/partition"])
    return registration["source_uri"].removeprefix(f"s3://{UPLOADS}/incoming/")


def _graphql_runs(port: int) -> set[str] | None:
    try:
        data = graphql(
            port, '{ runsOrError(filter: {pipelineName: "episode_job"}) { ... on Runs { results { runId } } } }'
        )
    except OSError:
        return None
    return {run["runId"] for run in data["runsOrError"]["results"]}
