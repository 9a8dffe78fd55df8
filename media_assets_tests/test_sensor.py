"""The inbox sensor: new uploads become partitions and runs; bad uploads are dead-lettered;
nothing is requested twice."""

from __future__ import annotations

import shutil

import dagster as dg

from media_assets.defs.orchestration.sensors import inbox_sensor
from media_assets.demo import samples
from media_assets.lib.core import dead_letters
from media_assets.lib.core.lake import LocalStore
from media_assets.lib.media.ingest import ingest
from media_assets.resources import InboxResource, LakeResource, MediaResource, SpeechResource


def evaluate(instance, cursor, lake_root):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "inbox": InboxResource.from_env(),
            "lake": LakeResource(root=str(lake_root)),
            "media": MediaResource(),
            "speech": SpeechResource(asr_model="tiny.en"),
        },
    )
    result = inbox_sensor(context)
    for request in result.run_requests:  # what the daemon does with them
        tags = {"dagster/partition": request.partition_key, "dagster/run_key": request.run_key}
        instance.add_run(dg.DagsterRun(job_name=request.job_name, tags=tags))
    return result


def test_new_uploads_become_partitions_and_runs(dagster_env, media, monkeypatch) -> None:
    inbox = dagster_env / "uploads"
    inbox.mkdir()
    monkeypatch.setenv("MEDIA_LAKE_INBOX", str(inbox))
    shutil.copy(media["tone"], inbox / "one.wav")
    shutil.copy(media["mp3"], inbox / "two.mp3")
    samples.text_as_media(inbox / "fake.mp4")
    lake_root = dagster_env / "lake"

    with dg.instance_for_test() as instance:
        look = evaluate(instance, None, lake_root)  # the first look: complete only if unchanged at the next
        assert isinstance(look, dg.SensorResult) and not look.run_requests and look.skip_reason
        first = evaluate(instance, look.cursor, lake_root)
        assert isinstance(first, dg.SensorResult)
        requested = sorted(r.partition_key for r in first.run_requests)
        assert len(requested) == 2
        (add,) = first.dynamic_partitions_requests
        assert add.partitions_def_name == "episodes" and sorted(add.partition_keys) == requested
        (record,) = dead_letters.list_records(LocalStore(lake_root))
        assert record["path"].endswith("fake.mp4") and record["reason"] == "unreadable_media"

        again = evaluate(instance, first.cursor, lake_root)
        assert not again.run_requests and not again.dynamic_partitions_requests

        shutil.copy(media["tone"], inbox / "one again.wav")  # same bytes: a duplicate, no run
        shutil.copy(media["video"], inbox / "three.mp4")
        samples.sidecar(inbox / "three.mp4")  # the uploader's completion marker: no second look needed
        third = evaluate(instance, again.cursor, lake_root)
        assert len(third.run_requests) == 1 and third.run_requests[0].partition_key not in requested
        fourth = evaluate(instance, third.cursor, lake_root)  # the duplicate, now complete: no run
        assert not fourth.run_requests
        assert len(dead_letters.list_records(LocalStore(lake_root))) == 1


def test_an_upload_ingested_by_a_tick_that_died_still_gets_its_run(dagster_env, media, monkeypatch) -> None:
    """A tick registered an episode, then died (daemon stopped, storage down) before its run was
    requested: at the next look the upload is a duplicate of an episode with no run, and gets one.
    A duplicate of an episode that has a run starts nothing."""
    inbox = dagster_env / "uploads"
    inbox.mkdir()
    monkeypatch.setenv("MEDIA_LAKE_INBOX", str(inbox))
    lake_root = dagster_env / "lake"
    upload = shutil.copy(media["tone"], inbox / "one.wav")
    samples.sidecar(upload)
    with dg.instance_for_test() as instance:
        (lost,) = ingest([upload], LocalStore(lake_root), MediaResource().settings().limits, lambda ids: None)
        assert lost.status == "registered"  # what the dead tick did; its result never reached Dagster
        result = evaluate(instance, None, lake_root)
        (request,) = result.run_requests
        assert (request.partition_key, request.run_key) == (lost.episode_id, lost.episode_id)

        again = shutil.copy(media["tone"], inbox / "one again.wav")
        samples.sidecar(again)
        assert not evaluate(instance, result.cursor, lake_root).run_requests
