"""The alert hook: a real HTTP server on loopback and a real command receive each new dead letter
once; repeats of an open failure do not alert again, a failure after it was resolved does."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from media_assets.lib.core import dead_letters
from media_assets.lib.core.errors import RejectedMedia
from media_assets_tests.services import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _fail(lake, subject="inbox/a.wav"):
    return dead_letters.dead_letter(
        lake,
        stage="ingest",
        subject=subject,
        path=subject,
        error=RejectedMedia("corrupt_media", "not media"),
        attempts=1,
        payload={"path": subject},
    )


def test_webhook_gets_each_new_dead_letter_once(lake, receiver, monkeypatch) -> None:
    monkeypatch.setenv("MEDIA_LAKE_ALERT_WEBHOOK_URL", receiver.url)
    first = _fail(lake)
    _fail(lake)  # the same failure again: the record is updated, nobody is paged twice
    other = _fail(lake, "inbox/b.wav")
    assert [b["record_id"] for b in receiver.bodies] == [first["record_id"], other["record_id"]]
    assert receiver.bodies[0]["reason"] == "corrupt_media" and receiver.bodies[0]["subject"] == "inbox/a.wav"

    resolved = dead_letters.resolve(lake, "ingest", "inbox/a.wav")
    assert resolved["resolved_at"] is not None
    assert dead_letters.resolve(lake, "ingest", "inbox/a.wav") is None  # nothing open any more
    assert [r["subject"] for r in dead_letters.list_records(lake, open_only=True)] == ["inbox/b.wav"]
    _fail(lake)  # it broke again after the fix: a new alert
    assert [b["subject"] for b in receiver.bodies] == ["inbox/a.wav", "inbox/b.wav", "inbox/a.wav"]
    assert dead_letters.get_record(lake, first["record_id"])["resolved_at"] is None


def test_command_gets_the_record_on_stdin(lake, tmp_path, monkeypatch) -> None:
    received = tmp_path / "received.jsonl"
    script = f"import sys; open({str(received)!r}, 'a').write(sys.stdin.read() + chr(10))"
    monkeypatch.setenv("MEDIA_LAKE_ALERT_COMMAND", shlex.join([sys.executable, "-c", script]))
    record = _fail(lake)
    (line,) = received.read_text().splitlines()
    assert json.loads(line) == record


def test_an_unreachable_webhook_does_not_stop_dead_lettering(lake, receiver, monkeypatch) -> None:
    url = receiver.url
    receiver.close()  # nothing listens there any more
    monkeypatch.setenv("MEDIA_LAKE_ALERT_WEBHOOK_URL", url)
    monkeypatch.setattr("media_assets.lib.core.alerts.time.sleep", lambda seconds: None)
    record = _fail(lake)
    assert dead_letters.get_record(lake, record["record_id"]) == record
