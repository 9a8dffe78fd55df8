"""Replaying dead-letter records: a rejected upload whose problem was fixed is ingested on
replay; a failed episode is materialized again."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from media_assets import cli
from media_assets.demo import samples
from media_assets.lib.core import dead_letters
from media_assets.lib.core.lake import LocalStore, raw_key


def test_replaying_a_fixed_upload_registers_it(dagster_env, media) -> None:
    upload = shutil.copy(media["tone"], dagster_env / "episode.wav")
    samples.wrong_sidecar(upload)
    (rejected,) = cli.ingest([upload], out=io.StringIO())
    assert rejected.reason == "checksum_mismatch"
    (record,) = dead_letters.list_records(LocalStore(dagster_env / "lake"))

    samples.sidecar(upload)  # the uploader sends the right checksum
    out = io.StringIO()
    assert cli.dlq("replay", record["record_id"], out=out) is True
    ingested, ran = [json.loads(text) for text in out.getvalue().splitlines()]
    assert ingested["status"] == "registered"  # then run, as `media-lake run` does
    assert (ran["episode_id"], ran["status"]) == (ingested["episode_id"], "materialized")


def test_replaying_a_failed_episode_rematerializes_it(dagster_env, media) -> None:
    (outcome,) = cli.ingest([media["tone"]], out=io.StringIO())
    lake = LocalStore(dagster_env / "lake")
    stored = lake.root / raw_key(outcome.episode_id)
    good = stored.read_bytes()
    stored.unlink()
    stored.write_bytes(b"bit rot")
    assert cli.materialize(None, None, io.StringIO()) is True  # failed, but accounted for (dead-lettered)
    (record,) = [r for r in dead_letters.list_records(lake) if r["stage"] == "raw_media"]

    stored.unlink()
    stored.write_bytes(good)  # the store is repaired
    out = io.StringIO()
    assert cli.dlq("replay", record["record_id"], out=out) is True
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert (line["episode_id"], line["status"]) == (outcome.episode_id, "materialized")
    assert dead_letters.get_record(lake, record["record_id"])["resolved_at"] is not None  # it succeeded since
    out = io.StringIO()
    assert cli.dlq("replay", stage="raw_media", out=out) is True and out.getvalue() == ""  # nothing open


def test_replay_by_stage_and_all_takes_only_open_records(dagster_env, media) -> None:
    lake = LocalStore(dagster_env / "lake")
    uploads = [shutil.copy(media["tone"], dagster_env / f"{name}.wav") for name in ("a", "b")]
    for upload in uploads:
        samples.wrong_sidecar(upload)
    cli.ingest(uploads, out=io.StringIO())
    assert len(dead_letters.list_records(lake, open_only=True)) == 2

    samples.sidecar(uploads[0])  # only the first upload is fixed
    out = io.StringIO()
    assert cli.dlq("replay", stage="ingest", out=out) is False  # the second is still rejected
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    statuses = {line["path"].rsplit("/", 1)[1]: line["status"] for line in lines if "path" in line}
    assert statuses == {"a.wav": "registered", "b.wav": "rejected"}
    assert [line["status"] for line in lines if "run_id" in line] == ["materialized"]
    (still_open,) = dead_letters.list_records(lake, open_only=True)
    assert still_open["subject"].endswith("b.wav")

    samples.sidecar(uploads[1])
    out = io.StringIO()
    assert cli.dlq("replay", out=out, stage=None) is True  # --all
    assert [json.loads(line)["status"] for line in out.getvalue().splitlines()] == ["duplicate"]  # same bytes as a.wav
    assert dead_letters.list_records(lake, open_only=True) == []
    for ambiguous in (["--stage", "ingest", still_open["record_id"]], ["--all", "--stage", "ingest"], []):
        with pytest.raises(SystemExit):
            cli.main(["dlq", "replay", *ambiguous])
