"""The Dagster UI as a content engineer's desk, for real: a webserver and a daemon on loopback
over a temporary instance and lake; runs launched through the GraphQL API (dagster-graphql's
client) and from the UI in headless Chromium (Debian's, driven by Playwright), with what the
materializations show checked against the lake."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from media_assets import remote
from media_assets.demo import samples
from media_assets.lib.core import catalog
from media_assets.lib.core.lake import LocalStore
from media_assets_tests.conftest import EPISODE_ASSETS
from media_assets_tests.services import free_port, graphql, start_dagster, stop, wait_for, webserver_up

pytestmark = pytest.mark.slow

GOOD = "Episode 42 - Space Talk.wav"
STRICT = "Rough Cut 7.wav"  # run with a word-confidence bar no speech can clear
SPOKEN = {
    GOOD: "Welcome to the show. Today we talk about rockets, the Moon and NASA. "
    "The Apollo program landed people on the Moon in 1969.",
    STRICT: "This is a rough cut of the interview about gardening, tomatoes and the summer rain.",
}
# The README's screenshots: written by the browser test when MEDIA_LAKE_UPDATE_SCREENSHOTS=1.
README_SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's: Playwright cannot download its own here
VIEWPORT = {"width": 1280, "height": 800}
# The "Join the Dagster community" dialog a local webserver shows on a first visit.
NO_COMMUNITY_DIALOG = "window.localStorage.setItem('communityNux', JSON.stringify('1'))"
RUN_SECONDS = 900
STRICT_CONFIG = {"resources": {"speech": {"config": {"min_mean_word_probability": 0.999}}}}


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """Two episodes ingested, then `dagster-webserver` and `dagster-daemon` on a fresh instance."""
    work = tmp_path_factory.mktemp("desk")
    env = {
        "DAGSTER_HOME": str(work / "home"),
        "MEDIA_LAKE_ROOT": str(work / "lake"),
        "MEDIA_LAKE_INBOX": str(work / "inbox"),
        "MEDIA_LAKE_INBOX_INTERVAL_SECONDS": "3600",  # nothing is dropped here: keep the sensor quiet
    }
    for folder in ("home", "inbox", "media"):
        (work / folder).mkdir()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        cli = [sys.executable, "-m", "media_assets.cli"]
        subprocess.run([sys.executable, "-m", "media_assets.instance"], check=True, capture_output=True)
        paths = [samples.speech(work / "media" / name, text) for name, text in SPOKEN.items()]
        ingested = subprocess.run([*cli, "ingest", *map(str, paths)], check=True, capture_output=True, text=True)
        keys = {Path(row["path"]).name: row["episode_id"] for row in map(json.loads, ingested.stdout.splitlines())}
        port = free_port()
        log = work / "dagster.log"
        webserver = start_dagster("dagster-webserver", "-h", "127.0.0.1", "-p", str(port), log=log)
        daemon = start_dagster("dagster-daemon", "run", log=log)

        try:
            wait_for(lambda: webserver_up(port), 180, "the webserver", alive=[webserver, daemon], log=log)
            yield {
                "shots": work / "shots",
                "work": work,
                "port": port,
                "url": f"http://127.0.0.1:{port}",
                "keys": keys,
                "lake": LocalStore(work / "lake"),
                "alive": [webserver, daemon],
                "log": log,
            }
        finally:
            stop(webserver)
            stop(daemon)


@pytest.fixture(scope="module")
def browser(desk):
    """A page of headless Chromium on the webserver; screenshots go to the desk's `shots`."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = chromium.new_context(viewport=VIEWPORT)
        context.add_init_script(NO_COMMUNITY_DIALOG)
        context.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        try:
            yield context.new_page()
        finally:
            chromium.close()


def screenshot(page: Page, desk: dict, name: str, readme: bool = False) -> None:
    page.screenshot(path=str(desk["shots"] / f"{name}.png"))
    if readme and os.environ.get("MEDIA_LAKE_UPDATE_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(desk["shots"] / f"{name}.png", README_SHOTS / f"{name}.png")


def wait_for_run_in_ui(page: Page, desk: dict, run_id: str) -> str:
    """Open the run's page and wait until it shows an end; its status as the UI shows it. The
    page title ("... [STATUS]") follows the run live."""
    page.goto(f"{desk['url']}/runs/{run_id}")
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        try:
            expect(page).to_have_title(re.compile(r"\[(SUCCESS|FAILURE|CANCELED)\]"), timeout=30_000)
            break
        except AssertionError:
            assert all(p.poll() is None for p in desk["alive"]), desk["log"].read_text()[-3000:]
    return re.search(r"\[(\w+)\]", page.title()).group(1)


def check_verdict_in_run_log(page: Page, desk: dict, run_id: str, check: str, asset: str, passed: bool) -> None:
    page.goto(f"{desk['url']}/runs/{run_id}")
    page.get_by_placeholder("Filter…").fill(check)
    verdict = "succeeded" if passed else "failed"
    expect(page.get_by_text(f"Check {check} {verdict} for materialization of {asset}.")).to_be_visible()


METADATA_QUERY = """
query ($key: AssetKeyInput!, $partition: String!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) {
        runId
        metadataEntries {
          label
          ... on FloatMetadataEntry { floatValue }
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on MarkdownMetadataEntry { mdStr }
          ... on PathMetadataEntry { path }
          ... on BoolMetadataEntry { boolValue }
        }
      }
    }
  }
}
"""


def shown_metadata(port: int, asset: str, partition: str) -> dict:
    """A materialization's metadata as the UI gets it, through the webserver's GraphQL API."""
    variables = {"key": {"path": [asset]}, "partition": partition}
    (materialization,) = graphql(port, METADATA_QUERY, variables)["assetOrError"]["assetMaterializations"]
    values = {}
    for entry in materialization["metadataEntries"]:
        label = entry.pop("label")
        values[label] = next(iter(entry.values()), None)
    return values


def test_readable_partition_keys(desk) -> None:
    keys = desk["keys"]
    assert keys[GOOD].startswith("episode-42-space-talk-") and keys[STRICT].startswith("rough-cut-7-")
    nodes = graphql(desk["port"], "{ assetNodes { assetKey { path } partitionKeysByDimension { partitionKeys } } }")
    (raw,) = [n for n in nodes["assetNodes"] if n["assetKey"]["path"] == ["raw_media"]]
    assert sorted(raw["partitionKeysByDimension"][0]["partitionKeys"]) == sorted(keys.values())


def test_find_an_episode_by_name_materialize_it_in_the_browser_and_read_what_came_out(desk, browser) -> None:
    """The asset graph with its groups; `raw_media`'s partitions filtered by the episode's name;
    that one episode materialized from the UI (episode_job, "Materialize all", one partition) and
    seen to succeed; its transcript's figures and passed checks on the pages."""
    page, url = browser, desk["url"]
    good, other = desk["keys"][GOOD], desk["keys"][STRICT]

    page.goto(f"{url}/asset-groups")
    graph = page.locator("svg foreignObject")
    expect(graph.get_by_text("speech", exact=True).first).to_be_visible()
    page.keyboard.press("Alt+KeyE")  # expand every group
    for asset in (*EPISODE_ASSETS, "catalog"):
        expect(graph.get_by_text(asset, exact=True).first).to_be_attached()
    screenshot(page, desk, "asset-graph")

    page.goto(f"{url}/assets/raw_media?view=partitions")
    listed = page.locator(f'[data-tooltip="{other}"]')
    expect(listed).to_be_visible()
    page.get_by_placeholder("Filter by name…").fill("space-talk")
    expect(page.locator(f'[data-tooltip="{good}"]')).to_be_visible()
    expect(listed).to_have_count(0)

    page.goto(f"{url}/locations/media_assets/jobs/{remote.JOB}")
    page.get_by_role("button", name=re.compile("Materialize all")).click()
    dialog = page.locator(".bp5-dialog").filter(has_text="Launch runs to materialize")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").fill("space-talk")
    page.locator("label").locator(f'[data-tooltip="{good}"]').click()
    dialog.get_by_text("Launch runs to materialize").click()  # closes the partition list
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    dialog.get_by_role("button", name="Launch 1 run").click()
    view = page.get_by_role("region", name=re.compile("Notifications")).get_by_role("link", name="View")
    run_id = view.get_attribute("href").rstrip("/").split("/runs/")[-1].split("?")[0]
    assert wait_for_run_in_ui(page, desk, run_id) == "SUCCESS", desk["log"].read_text()[-3000:]
    for check in ("contract", "word_confidence"):
        check_verdict_in_run_log(page, desk, run_id, check, "transcript", passed=True)

    page.goto(f"{url}/assets/raw_media?view=partitions&partition={good}")
    expect(page.get_by_role("row", name=re.compile(r"^duration_s "))).to_be_visible()
    page.get_by_placeholder("Filter by name…").fill("space-talk")
    expect(listed).to_have_count(0)
    screenshot(page, desk, "partitions", readme=True)
    page.goto(f"{url}/assets/transcript?view=partitions&partition={good}")
    expect(page.get_by_role("link", name=run_id[:8]).first).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^language en$"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^word_count \d+$"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^transcript_preview "))).to_be_visible()
    screenshot(page, desk, "materialization", readme=True)


def test_graphql_client_launches_an_episode_and_its_metadata_matches_the_lake(desk) -> None:
    """`media-lake launch` (dagster-graphql's client) runs the episode on the daemon and polls it
    to success; what the UI shows of each stage is what the lake holds."""
    episode = desk["keys"][GOOD]
    launched = subprocess.run(
        [sys.executable, "-m", "media_assets.cli", "launch", "--url", desk["url"], "--timeout", "900", episode],
        capture_output=True,
        text=True,
        timeout=1000,
    )
    assert launched.returncode == 0, launched.stderr[-3000:] + desk["log"].read_text()[-3000:]
    (line,) = [json.loads(x) for x in launched.stdout.splitlines()]
    assert (line["episode_id"], line["status"]) == (episode, "SUCCESS")

    con = catalog.connect(desk["lake"])

    def one(query: str):
        return con.execute(query, [episode]).fetchone()

    audio = shown_metadata(desk["port"], "normalized_audio", episode)
    assert (audio["loudness_in_lufs"], audio["loudness_out_lufs"]) == one(
        "SELECT input_i, output_i FROM loudness WHERE episode_id = ?"
    )
    assert audio["loudness_out_lufs"] == pytest.approx(-23.0, abs=0.5)
    transcript = shown_metadata(desk["port"], "transcript", episode)
    assert transcript["language"] == "en"
    assert transcript["word_count"] == one("SELECT count(*) FROM transcript_words WHERE episode_id = ?")[0] >= 15
    assert 0.5 < transcript["mean_word_probability"] <= 1.0
    assert "Moon" in transcript["transcript_preview"] and "**0:00**" in transcript["transcript_preview"]
    speakers = shown_metadata(desk["port"], "diarization", episode)
    assert (
        speakers["speaker_count"] == one("SELECT count(DISTINCT speaker_id) FROM speaker_turns WHERE episode_id = ?")[0]
    )
    assert "100%" in speakers["talk_time_share"]  # one voice
    chapters = shown_metadata(desk["port"], "chapters", episode)
    for (title,) in con.execute("SELECT title FROM chapters WHERE episode_id = ?", [episode]).fetchall():
        assert title in chapters["chapter_titles"]
    enriched = shown_metadata(desk["port"], "enriched_metadata", episode)
    assert "NASA" in enriched["top_entities"] and "science" in enriched["top_categories"]
    files = {
        name: path
        for asset in ("normalized_audio", "speaker_transcript", "distribution")
        for name, path in shown_metadata(desk["port"], asset, episode).items()
        if name.startswith("file_")
    }
    assert set(files) == {
        "file_audio",
        "file_srt",
        "file_vtt",
        "file_mp3",
        "file_podcasting_chapters",
        "file_webvtt_chapters",
    }
    assert all(os.path.isfile(path) for path in files.values())


def test_a_failed_check_shows_in_the_ui(desk, browser) -> None:
    """An episode run with a word-confidence bar no speech clears (run config, as the launchpad
    would set it): the transcript's warning gate fails, the episode still completes, and the
    pages say so: the run's log and the asset's Checks tab."""
    page, episode = browser, desk["keys"][STRICT]
    client = remote.client_for(desk["url"])
    run_id = client.submit_job_execution(remote.JOB, run_config=STRICT_CONFIG, tags={"dagster/partition": episode})
    assert wait_for_run_in_ui(page, desk, run_id) == "SUCCESS", desk["log"].read_text()[-3000:]
    check_verdict_in_run_log(page, desk, run_id, "word_confidence", "transcript", passed=False)
    check_verdict_in_run_log(page, desk, run_id, "contract", "transcript", passed=True)
    page.goto(f"{desk['url']}/assets/transcript?view=checks&checkDetail=word_confidence")
    result = page.get_by_text("Evaluation result", exact=True).locator("xpath=..")
    expect(result).to_contain_text("Failed")
    expect(page.get_by_text(re.compile(r"words, mean probability [0-9.]+ below 0.999"))).to_be_visible()
    screenshot(page, desk, "failed-check")
    checks = graphql(
        desk["port"],
        '{ assetNodes(assetKeys: [{path: ["transcript"]}]) { assetChecksOrError { ... on AssetChecks { checks { '
        "name executionForLatestMaterialization { runId evaluation { success } } } } } } }",
    )["assetNodes"][0]["assetChecksOrError"]["checks"]
    latest = {c["name"]: c["executionForLatestMaterialization"] for c in checks}
    assert latest["word_confidence"]["runId"] == run_id
    assert latest["word_confidence"]["evaluation"]["success"] is False
    assert latest["contract"]["evaluation"]["success"] is True
