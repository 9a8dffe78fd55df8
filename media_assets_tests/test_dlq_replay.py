"""Replaying dead-letter records: a rejected upload whose problem was fixed is ingested on
replay; a failed episode is materialized again."""

from __future__ import annotations

import io
import json
import shutil

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
    assert cli.dlq("replay", record["record_id"], out) is True
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["status"] == "registered"


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
    assert cli.dlq("replay", record["record_id"], out) is True
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert (line["episode_id"], line["status"]) == (outcome.episode_id, "materialized")
