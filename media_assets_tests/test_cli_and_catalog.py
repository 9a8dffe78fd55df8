"""The `media-lake` command end to end on the embedded default (SQLite instance, local lake),
and DuckDB over the lake returning known rows."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from media_assets.demo import samples
from media_assets_tests.conftest import EPISODE_ASSETS
from media_assets_tests.services import free_port, graphql, start_dagster, stop, wait_for, webserver_up

CLI = [sys.executable, "-m", "media_assets.cli"]


def media_lake(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, env=os.environ.copy())
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def ran(tmp_path_factory, media) -> dict:
    """`media-lake run` over an inbox of good, duplicate and broken files, in a fresh home."""
    work = tmp_path_factory.mktemp("cli")
    inbox = work / "inbox"
    inbox.mkdir()
    shutil.copy(media["mp3"], inbox / "a tagged episode.mp3")
    shutil.copy(media["mp3"], inbox / "b same bytes again.mp3")
    shutil.copy(media["video"], inbox / "clip.mp4")
    samples.random_bytes(inbox / "broken.wav")
    env = {"DAGSTER_HOME": str(work / "home"), "MEDIA_LAKE_ROOT": str(work / "lake")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        done = media_lake("run", str(inbox), cwd=work)
        yield {"work": work, "inbox": inbox, "run": done, "lines": json_lines(done.stdout)}
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def test_run_accounts_for_every_input(ran) -> None:
    ingested = [line for line in ran["lines"] if "status" in line and "path" in line]
    by_name = {Path(line["path"]).name: line for line in ingested}
    assert {name: line["status"] for name, line in by_name.items()} == {
        "broken.wav": "rejected",
        "clip.mp4": "registered",
        "b same bytes again.mp3": "duplicate",
        "a tagged episode.mp3": "registered",
    }
    assert by_name["broken.wav"]["reason"] == "unreadable_media"
    materialized = [line for line in ran["lines"] if "run_id" in line]
    assert sorted(m["episode_id"] for m in materialized) == sorted(
        by_name[n]["episode_id"] for n in ("clip.mp4", "a tagged episode.mp3")
    )
    assert all(m["status"] == "materialized" for m in materialized)


def test_sql_returns_the_expected_rows(ran) -> None:
    os.environ["MEDIA_LAKE_ROOT"] = str(ran["work"] / "lake")
    done = media_lake(
        "sql",
        "select original_name, has_video, round(duration_s) as s from episodes order by 1",
        "--format",
        "json",
        cwd=ran["work"],
    )
    assert json.loads(done.stdout) == [
        {"original_name": "a tagged episode.mp3", "has_video": False, "s": 4.0},
        {"original_name": "clip.mp4", "has_video": True, "s": 6.0},
    ]
    csv_out = media_lake(
        "sql", "select text from captions order by start_time", "--format", "csv", cwd=ran["work"]
    ).stdout.splitlines()
    assert csv_out == ["text", *[cue for _, _, cue in samples.DEFAULT_CUES]]
    table = media_lake(
        "sql", "select count(*) as n from loudness where normalization_type = 'linear'", cwd=ran["work"]
    ).stdout
    assert table.splitlines()[2].strip() == "2"


def test_catalog_database_and_hive_paths_work_for_plain_duckdb(ran) -> None:
    lake = ran["work"] / "lake"
    con = duckdb.connect(str(lake / "catalog.duckdb"), read_only=True)
    names = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    assert {"episodes", "loudness", "video_renditions", "media_metadata", "captions", "dead_letters"} <= names
    assert con.execute("select count(*) from episodes").fetchall() == [(2,)]
    con.close()
    hive = duckdb.connect()
    rows = hive.execute(
        f"select episode_id, count(*) from read_parquet('{lake}/loudness/*/*.parquet', hive_partitioning=true) "
        "group by 1"
    ).fetchall()
    assert len(rows) == 2 and all(n == 1 for _, n in rows)


def test_dlq_list_and_show(ran) -> None:
    os.environ["MEDIA_LAKE_ROOT"] = str(ran["work"] / "lake")
    listing = media_lake("dlq", "list", cwd=ran["work"]).stdout
    record_id = listing.splitlines()[2].split("|")[0].strip()
    shown = json.loads(media_lake("dlq", "show", record_id, cwd=ran["work"]).stdout)
    assert shown["reason"] == "unreadable_media" and shown["path"].endswith("broken.wav")
    missing = media_lake("dlq", "show", "0" * 16, cwd=ran["work"], check=False)
    assert missing.returncode == 2 and "no dead-letter record" in missing.stderr


def test_rerun_is_unchanged_and_visible_to_dagster(ran) -> None:
    """A second `materialize --all` records materializations marked unchanged in the instance."""
    import dagster as dg

    os.environ["MEDIA_LAKE_ROOT"] = str(ran["work"] / "lake")
    lake = ran["work"] / "lake"
    before = {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")}
    media_lake("materialize", "--all", cwd=ran["work"])
    assert {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")} == before
    with dg.DagsterInstance.from_config(str(ran["work"] / "home")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("normalized_audio"))
        assert event.asset_materialization.metadata["skipped_unchanged"].value is True


def test_progress_on_a_terminal_and_only_json_lines_through_a_pipe(ran) -> None:
    """With stderr on a terminal, `materialize` draws a progress bar there (episodes ended of N,
    steps ended, the stage of each running episode); through pipes, stdout is one JSON line per
    episode, in the order asked, and stderr stays empty."""
    episodes = sorted(line["episode_id"] for line in ran["lines"] if line.get("status") == "registered")
    args = ["materialize", "--select", "raw_media", "--select", "normalized_audio"]
    args += [arg for episode in episodes for arg in ("--episode", episode)]
    terminal, terminal_side = pty.openpty()
    wide = {**os.environ, "COLUMNS": "200"}  # room for the stage text (a narrow terminal shortens it)
    with subprocess.Popen(
        [*CLI, *args], cwd=ran["work"], env=wide, stdout=subprocess.PIPE, stderr=terminal_side
    ) as process:
        os.close(terminal_side)
        drawn = b""
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the terminal is closed once the process has exited
                break
            if not chunk:
                break
            drawn += chunk
        stdout = process.stdout.read().decode()
    assert process.returncode == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.decode(errors="replace"))
    total = len(episodes)
    assert f"{total} of {total} episodes" in screen and f"{2 * total}/{2 * total}" in screen
    assert re.search(f"({'|'.join(episodes)}): normalized_audio done", screen)  # the last to end, at the last refresh
    assert [line["episode_id"] for line in json_lines(stdout)] == episodes
    assert all(line.startswith("{") for line in stdout.splitlines())

    piped = media_lake(*args, cwd=ran["work"])
    assert [line["episode_id"] for line in json_lines(piped.stdout)] == episodes
    assert piped.stdout.count("\n") == total and piped.stderr == ""


def test_unknown_episode_is_a_usage_error(ran) -> None:
    done = media_lake("materialize", "--episode", "ffffffffffffffffffffffff", cwd=ran["work"], check=False)
    assert done.returncode != 0 and "unknown episode" in done.stderr


def test_web_ui_shows_the_same_assets_partitions_and_runs(ran) -> None:
    """The Dagster webserver, loading workspace.yaml against the same instance, serves the assets,
    the episode partitions and the CLI's runs (queried through its GraphQL API)."""
    port = free_port()
    server = start_dagster("dagster-webserver", "-h", "127.0.0.1", "-p", str(port), log=ran["work"] / "webserver.log")

    try:
        wait_for(lambda: webserver_up(port), 120, "the webserver", alive=[server], log=ran["work"] / "webserver.log")
        nodes = graphql(port, "{ assetNodes { assetKey { path } partitionKeysByDimension { partitionKeys } } }")[
            "assetNodes"
        ]
        registered = sorted(line["episode_id"] for line in ran["lines"] if line.get("status") == "registered")
        partitions = {n["assetKey"]["path"][0]: n["partitionKeysByDimension"] for n in nodes}
        assert set(partitions) == {*EPISODE_ASSETS, "catalog"}
        assert sorted(partitions["normalized_audio"][0]["partitionKeys"]) == registered
        runs = graphql(port, "{ runsOrError { ... on Runs { results { status tags { key value } } } } }")
        episode_runs = [
            r for r in runs["runsOrError"]["results"] if any(t["key"] == "media-lake/episode" for t in r["tags"])
        ]
        assert {r["status"] for r in episode_runs} == {"SUCCESS"}
        assert {t["value"] for r in episode_runs for t in r["tags"] if t["key"] == "dagster/partition"} == set(
            registered
        )
    finally:
        stop(server)
