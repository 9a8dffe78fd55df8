"""The Dagster layer: definitions load, compute routing, in-process materialization with code
and data versions, and failures that become dead-letter records without retries."""

from __future__ import annotations

import json
import os

import dagster as dg
import pytest
from dagster_k8s.job import get_user_defined_k8s_config

from media_assets.definitions import defs
from media_assets.defs.episodes import COMPUTE_CLASSES, RETRY_POLICY, compute
from media_assets.lib.core import catalog, dead_letters
from media_assets.lib.core.lake import raw_key
from media_assets.lib.stages import STAGES
from media_assets.observability.exporter import PipelineCollector
from media_assets_tests.conftest import EPISODE_ASSETS, materialize_episode, register_episode
from media_assets_tests.test_metrics import _value, collected

CODE_VERSIONS = {stage.name: stage.code_version for stage in STAGES}


def test_definitions_load_and_validate() -> None:
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {*EPISODE_ASSETS, "catalog"}
    assert graph.get(dg.AssetKey("normalized_video")).parent_keys == {
        dg.AssetKey("raw_media"),
        dg.AssetKey("normalized_audio"),
    }
    assert graph.get(dg.AssetKey("speaker_transcript")).parent_keys == {
        dg.AssetKey("transcript"),
        dg.AssetKey("diarization"),
    }
    chapters_parents = graph.get(dg.AssetKey("chapters")).parent_keys
    assert {dg.AssetKey("transcript"), dg.AssetKey("diarization")} <= chapters_parents  # chapters waits for both
    for key in EPISODE_ASSETS:
        assert graph.get(dg.AssetKey(key)).partitions_def.name == "episodes"


def test_catalog_depends_on_every_table_writer_and_the_job_runs_every_stage() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    writers = {a.key for a in definitions.assets if "tables" in (a.metadata_by_key.get(a.key) or {})}
    assert {k.to_user_string() for k in writers} == {
        "raw_media",
        "normalized_audio",
        "normalized_video",
        "media_metadata",
        "diarization",
        "speaker_transcript",
        "chapters",
        "enriched_metadata",
    }
    # every stage writes its quality_checks rows too, so the catalog waits for all of them
    quality_writers = {dg.AssetKey(stage.name) for stage in STAGES if stage.quality_checks}
    assert quality_writers == {dg.AssetKey(name) for name in EPISODE_ASSETS}
    assert graph.get(dg.AssetKey("catalog")).parent_keys == writers | quality_writers
    job = definitions.resolve_job_def("episode_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == set(EPISODE_ASSETS)


def test_every_asset_declares_its_kinds() -> None:
    for asset in defs().assets:
        kinds = asset.specs_by_key[asset.key].kinds
        assert 1 <= len(kinds) <= 3, (asset.key, kinds)  # the UI shows at most three


@pytest.mark.parametrize(
    "asset, compute_class",
    [
        ("raw_media", "cpu-metadata"),
        ("normalized_audio", "cpu-normalization"),
        ("normalized_video", "cpu-normalization"),
        ("media_metadata", "cpu-metadata"),
        ("transcript", "gpu-transcription"),
        ("diarization", "gpu-transcription"),
        ("speaker_transcript", "cpu-metadata"),
        ("chapters", "cpu-nlp"),
        ("enriched_metadata", "cpu-nlp"),
        ("distribution", "cpu-normalization"),
    ],
)
def test_every_step_carries_its_compute_class(asset, compute_class) -> None:
    definition = next(a for a in defs().assets if a.key == dg.AssetKey(asset))
    node = definition.node_def
    assert node.pool == compute_class
    assert node.tags["dagster-celery/queue"] == compute_class
    k8s = get_user_defined_k8s_config(node.tags)
    assert k8s.container_config["resources"]["requests"]["cpu"]
    pool = "gpu" if compute_class == "gpu-transcription" else "cpu"
    assert k8s.pod_spec_config["node_selector"] == {"media-lake/node-pool": pool}
    assert definition.op.retry_policy == RETRY_POLICY
    assert RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL and RETRY_POLICY.jitter == dg.Jitter.PLUS_MINUS
    assert compute_class in COMPUTE_CLASSES


def test_gpu_class_asks_kubernetes_for_a_gpu_node() -> None:
    op_tags = compute("gpu-transcription")["op_tags"]
    k8s = get_user_defined_k8s_config({"dagster-k8s/config": json.dumps(op_tags["dagster-k8s/config"])})
    assert k8s.container_config["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert k8s.pod_spec_config["tolerations"][0]["key"] == "nvidia.com/gpu"


def _materialize(instance, resources, episode_id, selection=EPISODE_ASSETS):
    return materialize_episode(instance, resources, episode_id, selection)


@pytest.fixture
def registered(dagster_env, media):
    return register_episode(dagster_env, media["video"])


def test_materialize_then_rematerialize_reports_unchanged(registered) -> None:
    instance, resources, _, episode_id = registered
    first = _materialize(instance, resources, episode_id)
    assert first.success
    second = _materialize(instance, resources, episode_id)
    assert second.success

    def by_asset(result):
        return {
            m.asset_key.to_user_string(): m
            for m in (e.materialization for e in result.get_asset_materialization_events())
        }

    before, after = by_asset(first), by_asset(second)
    assert set(before) == set(EPISODE_ASSETS)
    for asset in EPISODE_ASSETS:
        assert before[asset].metadata["skipped_unchanged"].value is False
        assert after[asset].metadata["skipped_unchanged"].value is True
        assert before[asset].tags["dagster/data_version"] == after[asset].tags["dagster/data_version"]
        assert after[asset].tags["dagster/code_version"] == CODE_VERSIONS[asset]


def test_every_quality_gate_passes_on_a_good_episode_in_the_ui_and_the_lake(registered) -> None:
    instance, resources, store, episode_id = registered
    result = _materialize(instance, resources, episode_id)
    assert result.success
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    declared = {(stage.name, check.name) for stage in STAGES for check in stage.quality_checks}
    assert set(evaluations) == declared
    assert all(e.passed for e in evaluations.values()), [e.description for e in evaluations.values() if not e.passed]
    loudness = evaluations[("normalized_audio", "loudness")].metadata["figures"].value
    assert abs(loudness["integrated_lufs"] - loudness["target_lufs"]) <= 0.5  # the independent meter's reading
    gop = evaluations[("normalized_video", "fixed_gop")].metadata["figures"].value
    assert gop["max_gap_s"] == pytest.approx(2.0, abs=0.05) and gop["keyframes"] == 3  # 6 s of video, 2 s GOP
    con = catalog.connect(store)
    rows = con.execute(
        "SELECT stage, check_name, passed, blocking FROM quality_checks WHERE episode_id = ?", [episode_id]
    ).fetchall()
    assert {(stage, name) for stage, name, _, _ in rows} == declared
    assert all(passed for _, _, passed, _ in rows)
    assert {name for _, name, _, blocking in rows if blocking} == {"contract", "loudness"}
    assert_summaries_match_the_lake(result, con, episode_id)


def assert_summaries_match_the_lake(result, con, episode_id: str) -> None:
    """What the UI shows on each materialization is what the lake holds, and every artifact
    it points at is there."""
    shown = {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
        for m in (e.materialization for e in result.get_asset_materialization_events())
    }

    def one(query: str):
        return con.execute(query, [episode_id]).fetchone()

    audio = shown["normalized_audio"]
    assert (audio["loudness_in_lufs"], audio["loudness_out_lufs"]) == one(
        "SELECT input_i, output_i FROM loudness WHERE episode_id = ?"
    )
    assert shown["transcript"]["word_count"] == one("SELECT count(*) FROM transcript_words WHERE episode_id = ?")[0]
    assert (
        shown["diarization"]["speaker_count"]
        == one("SELECT count(DISTINCT speaker_id) FROM speaker_turns WHERE episode_id = ?")[0]
    )
    titles = con.execute("SELECT title FROM chapters WHERE episode_id = ? ORDER BY chapter_index", [episode_id])
    for title, *_ in titles.fetchall():
        assert title in shown["chapters"]["chapter_titles"]
    files = {name: value for metadata in shown.values() for name, value in metadata.items() if name.startswith("file_")}
    assert {"file_audio", "file_video", "file_srt", "file_vtt", "file_mp3", "file_podcasting_chapters"} <= set(files)
    assert all(os.path.isfile(path) for path in files.values())


def test_corrupted_stored_bytes_fail_permanently_into_the_dead_letter_store(registered) -> None:
    instance, resources, store, episode_id = registered
    stored = store.root / raw_key(episode_id)
    stored.unlink()  # the current file is a read-only hard link to an immutable version
    stored.write_bytes(b"not the bytes that were registered")
    result = _materialize(instance, resources, episode_id)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["raw_media"]
    assert "checksum_mismatch" in failures[0].step_failure_data.error.message
    assert not [e for e in result.all_events if e.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")]
    (record,) = dead_letters.list_records(store)
    assert record["stage"] == "raw_media" and record["episode_id"] == episode_id
    assert record["reason"] == "checksum_mismatch" and record["attempts"] == 1
    assert record["run_id"] == result.run_id


def fake_ffmpeg(folder, monkeypatch, body: str) -> None:
    """Point the stages at an `ffmpeg` that is a shell script doing `body` (a real process)."""
    script = folder / "ffmpeg"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("MEDIA_LAKE_FFMPEG", str(script))


def _retry_events(result) -> tuple[list, list]:
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    restarts = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    return retries, restarts


def test_tool_killed_by_a_signal_is_retried_with_growing_delays_then_dead_lettered(
    registered, tmp_path, monkeypatch
) -> None:
    """A tool killed by a signal (here ffmpeg gets SIGKILL, as from the OOM killer) is transient:
    retried by the RetryPolicy with exponential backoff; the last attempt writes the dead letter."""
    instance, resources, store, episode_id = registered
    assert _materialize(instance, resources, episode_id, ["raw_media"]).success
    fake_ffmpeg(tmp_path, monkeypatch, "kill -9 $$")
    result = _materialize(instance, resources, episode_id, ["normalized_audio"])
    assert not result.success
    retries, restarts = _retry_events(result)
    assert len(retries) == len(restarts) == RETRY_POLICY.max_retries
    waits = [e.event_specific_data.seconds_to_wait for e in retries]
    base = RETRY_POLICY.delay
    for attempt, wait in enumerate(waits, start=1):  # (2^n - 1) * base, +- base of jitter
        assert (2**attempt - 2) * base <= wait <= 2**attempt * base, waits
    assert waits == sorted(waits)
    starts = [
        entry.timestamp
        for entry in instance.all_logs(result.run_id)
        if entry.dagster_event and entry.dagster_event.event_type_value in ("STEP_START", "STEP_RESTARTED")
    ]
    assert all(b - a >= wait for a, b, wait in zip(starts, starts[1:], waits))  # it really waited
    (record,) = dead_letters.list_records(store)
    assert record["stage"] == "normalized_audio" and record["reason"] == "exhausted_retries"
    assert record["failure_class"] == "transient"
    assert record["attempts"] == RETRY_POLICY.max_retries + 1
    assert record["error_type"] == "MediaToolError" and "exited with -9" in record["message"]
    # what the exporter makes of it: the retries and the failure, by stage and compute class
    scraped = collected(PipelineCollector(instance, store))
    labels = {"stage": "normalized_audio", "compute_class": "cpu-normalization"}
    assert _value(scraped, "media_lake_step_retries_total", **labels) == RETRY_POLICY.max_retries
    failure = {"failure_class": "transient", "reason": "exhausted_retries", "error_type": "MediaToolError"}
    assert _value(scraped, "media_lake_step_failures_total", **labels, **failure) == 1
    assert _value(scraped, "media_lake_step_failures_total") == 1


@pytest.mark.parametrize(
    "body, error_type, reason",
    [
        ('echo "Invalid data found when processing input" >&2; exit 1', "MediaToolError", "media_tool_failed"),
        (None, "FileNotFoundError", "unexpected_error"),  # the binary is gone: a deployment error
    ],
)
def test_deterministic_errors_are_dead_lettered_after_one_attempt(
    registered, tmp_path, monkeypatch, body, error_type, reason
) -> None:
    instance, resources, store, episode_id = registered
    assert _materialize(instance, resources, episode_id, ["raw_media"]).success
    if body is None:
        monkeypatch.setenv("MEDIA_LAKE_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    else:
        fake_ffmpeg(tmp_path, monkeypatch, body)
    result = _materialize(instance, resources, episode_id, ["normalized_audio"])
    assert not result.success
    assert _retry_events(result) == ([], [])
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert f"[{reason}] {error_type}" in failure.step_failure_data.error.message
    (record,) = dead_letters.list_records(store)
    assert (record["stage"], record["reason"], record["failure_class"]) == ("normalized_audio", reason, "permanent")
    assert record["attempts"] == 1 and record["error_type"] == error_type
    assert "Traceback" in record["traceback"] and "normalize" in record["traceback"]
