"""Structured logs, read as a log shipper reads them: the stderr of real `media-lake` commands, one
JSON object per line, for stages that succeed, one that fails its blocking gate and one whose
ffmpeg fails; readable lines on a terminal. With tracing on, the same runs' spans as an OTLP/HTTP
collector receives them."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from media_assets.observability.logs import FORMAT_ENV, LEVEL_ENV, STAGE_KEYS, log_format
from media_assets.observability.tracing import ENDPOINT_ENV, provider, tracer

BIN = Path(sys.executable).parent
TONE_SECONDS = 6.0


def media_lake(env: dict, *args: str) -> tuple[list[dict], list[str]]:
    """Run the command; its stdout JSON lines and its stderr lines."""
    done = subprocess.run([BIN / "media-lake", *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr.splitlines()


def stage_lines(lines: list[dict], event: str, stage: str) -> list[dict]:
    return [line for line in lines if line["event"] == event and line.get("stage") == stage]


class Collector:
    """An OTLP/HTTP trace receiver on loopback: the spans it was sent, as (name, trace id hex,
    status code, attributes, [(event name, attributes)])."""

    def __init__(self):
        self.spans: list[tuple] = []
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        collector.spans += [collector.read(span) for span in scope.spans]
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    @staticmethod
    def read(span) -> tuple:
        def values(attributes) -> dict:
            return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in attributes}

        events = [(event.name, values(event.attributes)) for event in span.events]
        return span.name, span.trace_id.hex(), span.status.code, values(span.attributes), events


@pytest.fixture
def collector():
    receiver = Collector()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def env(tmp_path: Path) -> dict:
    (tmp_path / "home").mkdir()
    return {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "MEDIA_LAKE_ROOT": str(tmp_path / "lake"),
        LEVEL_ENV: "INFO",
        FORMAT_ENV: "auto",  # stderr is a pipe here: JSON
    }


@pytest.fixture
def episode(env: dict, tmp_path: Path) -> str:
    tone = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={TONE_SECONDS}", str(tone)],
        check=True,
    )
    (registered,), _ = media_lake(env, "ingest", str(tone))
    return registered["episode_id"]


def test_every_line_of_a_run_is_json_and_stage_lines_carry_episode_stage_run_attempt_and_timings(
    env, episode, collector
):
    env = {**env, ENDPOINT_ENV: collector.url}
    stages = ("raw_media", "normalized_audio")
    (result,), stderr = media_lake(env, "materialize", "--episode", episode, *(f"--select={s}" for s in stages))
    assert result["status"] == "materialized"
    first_run = result["run_id"]
    lines = [json.loads(line) for line in stderr]  # every line: a log shipper never meets a non-JSON one
    for stage in stages:
        (started,) = stage_lines(lines, "stage started", stage)
        (finished,) = stage_lines(lines, "stage finished", stage)
        for line in (started, finished):
            assert {key: line[key] for key in STAGE_KEYS} == {
                "episode_id": episode,
                "stage": stage,
                "run_id": result["run_id"],
                "attempt": 1,
            }
            assert line["level"] == "info" and line["timestamp"].startswith("20")
        assert finished["skipped_unchanged"] is False
        assert finished["audio_seconds"] == pytest.approx(TONE_SECONDS, abs=0.05)
        assert 0 < finished["seconds"] < 300
        assert finished["real_time_factor"] == pytest.approx(finished["seconds"] / finished["audio_seconds"], abs=1e-4)

    # changed settings: the stage runs again and its blocking loudness gate fails (any peak is over)
    failing = {**env, "MEDIA_LAKE_TRUE_PEAK_MARGIN_DB": "-40"}
    (result,), stderr = media_lake(failing, "materialize", "--episode", episode, "--select=normalized_audio")
    assert result["status"] == "failed" and result["dead_lettered"]
    lines = [json.loads(line) for line in stderr]
    (gate,) = stage_lines(lines, "blocking quality gate failed, dead-lettered", "normalized_audio")
    assert gate["level"] == "error" and gate["gates"] == ["loudness"]
    assert {key: gate[key] for key in STAGE_KEYS} == {
        "episode_id": episode,
        "stage": "normalized_audio",
        "run_id": result["run_id"],
        "attempt": 1,
    }
    assert gate["seconds"] > 0
    (step_failure,) = [line for line in lines if line.get("dagster_event") == "STEP_FAILURE"]
    assert (step_failure["stage"], step_failure["episode_id"], step_failure["run_id"], step_failure["level"]) == (
        "normalized_audio",
        episode,
        result["run_id"],
        "error",
    )
    assert step_failure["error_type"] and step_failure["error"]  # Dagster's error, in the line itself

    # Traces: a span per stage execution, in the trace of its run's id, its log lines as events;
    # the failed gate's span failed (status code 2). The catalog is no stage: no span.
    trace_of = {"first": first_run.replace("-", ""), "second": result["run_id"].replace("-", "")}
    spans = {(name, trace): (status, attributes, events) for name, trace, status, attributes, events in collector.spans}
    expected = [("raw_media", "first"), ("normalized_audio", "first"), ("normalized_audio", "second")]
    assert sorted(spans) == sorted((stage, trace_of[run]) for stage, run in expected)
    status, attributes, events = spans[("normalized_audio", trace_of["first"])]
    assert status == 0 and attributes["media_lake.episode_id"] == episode
    assert attributes["media_lake.compute_class"] == "cpu-normalization" and attributes["media_lake.attempt"] == 1
    assert [name for name, _ in events] == ["stage started", "stage finished"]
    assert events[1][1]["media_lake.seconds"] == finished["seconds"]
    status, attributes, events = spans[("normalized_audio", trace_of["second"])]
    assert status == 2 and "blocking quality gate failed, dead-lettered" in [name for name, _ in events]


def test_a_stage_whose_tool_fails_logs_the_error_with_its_class_and_reason(env, episode, tmp_path: Path):
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'Invalid data found when processing input' >&2\nexit 1\n")
    broken.chmod(0o755)
    (result,), _ = media_lake(env, "materialize", "--episode", episode, "--select=raw_media")
    assert result["status"] == "materialized"
    # the dead letter's alert command fails too: the project's stdlib logger says so in the run's log
    failing = {**env, "MEDIA_LAKE_FFMPEG": str(broken), "MEDIA_LAKE_ALERT_COMMAND": "false"}
    (result,), stderr = media_lake(failing, "materialize", "--episode", episode, "--select=normalized_audio")
    assert result["status"] == "failed"
    lines = [json.loads(line) for line in stderr]
    (alert,) = [line for line in lines if line["event"].startswith("alert command for dead letter")]
    assert (alert["level"], alert["stage"], alert["episode_id"], alert["run_id"]) == (
        "warning",
        "normalized_audio",
        episode,
        result["run_id"],
    )
    (failed,) = stage_lines(lines, "stage failed, dead-lettered", "normalized_audio")
    assert {key: failed[key] for key in STAGE_KEYS} == {
        "episode_id": episode,
        "stage": "normalized_audio",
        "run_id": result["run_id"],
        "attempt": 1,
    }
    assert failed["level"] == "error" and failed["error_type"] == "MediaToolError"
    assert failed["failure_class"] == "permanent" and failed["reason"]
    assert "Invalid data found" in failed["error"]


def test_on_a_terminal_the_lines_are_for_people_and_a_misspelt_level_stops_nothing(env, episode):
    misspelt = {**env, FORMAT_ENV: "console", LEVEL_ENV: "verbose"}
    (result,), stderr = media_lake(misspelt, "materialize", "--episode", episode, "--select=raw_media")
    assert result["status"] == "materialized"
    assert [line for line in stderr if "'VERBOSE'" in line and "using the default" in line]
    (finished,) = [line for line in stderr if "stage finished" in line]  # at INFO, the default
    assert f"episode_id={episode}" in finished and "stage=raw_media" in finished and "seconds=" in finished
    with pytest.raises(json.JSONDecodeError):
        json.loads(finished)
    leader, follower = os.openpty()
    with open(follower, "w") as terminal, open(os.devnull, "w") as pipe_like:
        assert log_format(None, terminal, {}) == "console"
        assert log_format(None, pipe_like, {}) == "json"
        assert log_format("json", terminal, {FORMAT_ENV: "console"}) == "json"  # the logger's config first
    os.close(leader)
    with pytest.raises(ValueError, match=FORMAT_ENV):
        log_format(None, sys.stderr, {FORMAT_ENV: "xml"})


def test_tracing_is_off_unless_an_endpoint_is_set(monkeypatch) -> None:
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    provider.cache_clear()
    assert tracer() is None
