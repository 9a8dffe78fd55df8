"""The inbox on S3: the same sensor, pointed at `s3://bucket/prefix` on a real S3 server on
loopback, ingests new objects once, names them by their URI, takes an overwritten key again
(dagster issue 22892), and hands an upload too large for a tick to an ingest run."""

from __future__ import annotations

import io
import json
import shutil

import dagster as dg
import pytest

from media_assets import cli
from media_assets.defs.orchestration import sensors
from media_assets.defs.orchestration.jobs import TAG_INGESTED, ingest_job
from media_assets.demo import samples
from media_assets.lib.core import dead_letters
from media_assets.lib.core.identity import sha256_file
from media_assets.lib.core.lake import LocalStore
from media_assets.lib.media.ingest import read_registration
from media_assets.resources import InboxResource, LakeResource, MediaResource
from media_assets_tests.conftest import REGION

BUCKET = "uploads"


@pytest.fixture
def inbox(s3, s3_endpoint, monkeypatch) -> InboxResource:
    s3.create_bucket(Bucket=BUCKET)
    yield InboxResource(location=f"s3://{BUCKET}/incoming", s3_endpoint_url=s3_endpoint, s3_region=REGION)
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def tick(instance, inbox: InboxResource, cursor: str | None, lake_root):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"inbox": inbox, "lake": LakeResource(root=str(lake_root)), "media": MediaResource()},
    )
    return sensors.inbox_sensor(context)


def put(s3, key: str, path) -> None:
    s3.upload_file(str(path), BUCKET, f"incoming/{key}")


def test_new_objects_are_ingested_once_by_uri(
    s3, s3_endpoint, inbox, dagster_env, media, tmp_path, monkeypatch
) -> None:
    lake_root = dagster_env / "lake"
    put(s3, "show/one.wav", media["tone"])
    put(s3, "show/one-again.wav", media["tone"])  # same bytes: a duplicate
    put(s3, "fake.mp4", samples.text_as_media(tmp_path / "fake.mp4"))
    video = shutil.copy(media["video"], tmp_path / "video.mp4")
    put(s3, "video.mp4", video)
    put(s3, "video.mp4.sha256", samples.sidecar(video))
    with dg.instance_for_test() as instance:
        first = tick(instance, inbox, None, lake_root)  # objects are complete once visible: no second look
        requested = sorted(r.partition_key for r in first.run_requests)
        assert len(requested) == 2
        lake = LocalStore(lake_root)
        sources = {read_registration(lake, e)["source_uri"] for e in requested}
        tone_keys = {f"s3://{BUCKET}/incoming/show/one.wav", f"s3://{BUCKET}/incoming/show/one-again.wav"}
        assert len(sources & tone_keys) == 1 and f"s3://{BUCKET}/incoming/video.mp4" in sources  # one tone: same bytes
        (video,) = [e for e in requested if read_registration(lake, e)["source_uri"].endswith("video.mp4")]
        assert read_registration(lake, video)["sidecar_verified"] is True  # the sidecar object came along
        (record,) = dead_letters.list_records(lake)
        assert (record["subject"], record["reason"]) == (f"s3://{BUCKET}/incoming/fake.mp4", "unreadable_media")

        again = tick(instance, inbox, first.cursor, lake_root)
        assert not again.run_requests and again.skip_reason

        put(s3, "show/one.wav", media["mp3"])  # the key is overwritten with other bytes: new again
        third = tick(instance, inbox, again.cursor, lake_root)
        (request,) = third.run_requests
        assert request.partition_key not in requested
        assert read_registration(lake, request.partition_key)["sha256"] == sha256_file(media["mp3"])
        assert len(json.loads(third.cursor)["handled"]) <= 5  # keys handled recently, not the bucket

    # The rejected object is fixed at its source, then replayed from the dead letter.
    put(s3, "fake.mp4", media["speech"])
    monkeypatch.setenv("MEDIA_LAKE_INBOX", inbox.location)
    monkeypatch.setenv("MEDIA_LAKE_S3_ENDPOINT_URL", s3_endpoint)
    out = io.StringIO()
    assert cli.dlq("replay", record["record_id"], out=out) is True
    line, ran = [json.loads(text) for text in out.getvalue().splitlines()]
    assert (line["path"], line["status"]) == (f"s3://{BUCKET}/incoming/fake.mp4", "registered")
    assert (ran["episode_id"], ran["status"]) == (line["episode_id"], "materialized")


def test_an_upload_too_large_for_a_tick_is_ingested_by_a_run(s3, inbox, dagster_env, media, monkeypatch) -> None:
    big, small = media["tone"], media["mp3"]
    assert small.stat().st_size < big.stat().st_size
    monkeypatch.setattr(sensors, "INGEST_IN_RUN_BYTES", big.stat().st_size)
    lake_root = dagster_env / "lake"
    put(s3, "big.wav", big)
    put(s3, "small.mp3", small)
    lake = LakeResource(root=str(lake_root))
    with dg.instance_for_test() as instance:
        result = tick(instance, inbox, None, lake_root)
        by_job = {}
        for request in result.run_requests:
            by_job.setdefault(request.job_name, []).append(request)
        assert len(by_job["episode_job"]) == 1  # the small one, ingested in the tick
        (ingest_request,) = by_job["ingest_job"]
        assert (
            ingest_request.run_config["ops"]["ingest_upload"]["config"]["source"] == f"s3://{BUCKET}/incoming/big.wav"
        )
        assert not tick(instance, inbox, result.cursor, lake_root).run_requests  # requested once

        run = ingest_job.execute_in_process(
            run_config=ingest_request.run_config,
            instance=instance,
            resources={"inbox": inbox, "lake": lake, "media": MediaResource()},
        )
        episode_id = instance.get_run_by_id(run.run_id).tags[TAG_INGESTED]
        assert episode_id in instance.get_dynamic_partitions("episodes")
        assert read_registration(LocalStore(lake_root), episode_id)["sha256"] == sha256_file(big)

        (success,) = [e for e in run.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS]
        context = dg.build_run_status_sensor_context(
            sensor_name=sensors.ingested_upload_sensor.name,
            dagster_event=success,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run.run_id),
        )
        request = sensors.ingested_upload_sensor(context)
        assert (request.partition_key, request.run_key) == (episode_id, episode_id)


def test_an_ingest_run_that_cannot_fetch_its_upload_dead_letters_it(inbox, dagster_env) -> None:
    """The object is gone by the time its ingest run starts: one dead letter naming the upload
    (replayable), and the run fails without retrying what cannot change."""
    source = f"s3://{BUCKET}/incoming/vanished.wav"
    lake = LakeResource(root=str(dagster_env / "lake"))
    with dg.instance_for_test() as instance:
        run = ingest_job.execute_in_process(
            run_config={"ops": {"ingest_upload": {"config": {"source": source}}}},
            instance=instance,
            resources={"inbox": inbox, "lake": lake, "media": MediaResource()},
            raise_on_error=False,
        )
        assert not run.success
        retries = [e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert retries == []
    (record,) = dead_letters.list_records(lake.store())
    assert (record["stage"], record["subject"], record["payload"]["path"]) == ("ingest", source, source)
    assert record["run_id"] == run.run_id and record["attempts"] == 1
