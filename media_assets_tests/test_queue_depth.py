"""Celery queue depths read from the real local brokers, RabbitMQ and Redis: real Celery tasks are
sent (no worker takes them) to queues of the test's own, and the depths must be the known counts;
a broker that is down or never answers must raise within seconds, not hang a scrape."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import celery
import kombu
import pytest
from kombu.exceptions import OperationalError

from media_assets.defs.orchestration.executors import CELERY_BROKER_ENV
from media_assets.observability.queues import queue_depths
from media_assets_tests.services import free_port, stop
from media_assets_tests.test_metrics import _samples, _scrape, _serve

pytestmark = [pytest.mark.services]

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/11"  # a database of the tests' own


@pytest.fixture(params=[RABBITMQ, REDIS], ids=["rabbitmq", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def names(broker: str) -> Iterator[list[str]]:
    """Three queue names no real queue has; every trace of them is removed from the broker after."""
    token = uuid.uuid4().hex[:8]
    queues = [f"media-lake-test-depth-{token}-{n}" for n in (1, 2, 3)]
    try:
        yield queues
    finally:
        with kombu.Connection(broker) as connection:
            for name in queues:
                channel = connection.channel()
                try:
                    channel.queue_delete(name)
                except connection.channel_errors:
                    pass  # never declared
                finally:
                    channel.close()
            if broker == REDIS:  # the binding sets and any priority sub-list left behind
                client = connection.default_channel.client
                if leftovers := client.keys(f"*{token}*"):
                    client.delete(*leftovers)


def send_tasks(broker: str, queue: str, priorities: list[int]) -> None:
    """As Dagster's celery executor does: one task a message, sent to its compute class's queue.
    On Redis, priorities 3 and up go to Celery's priority sub-lists of the queue."""
    with celery.Celery("media-lake-test", broker=broker) as app:
        app.conf.broker_transport_options = {"confirm_publish": True}  # RabbitMQ counts it on return
        for priority in priorities:
            app.send_task("media_lake_test.never_run", queue=queue, priority=priority)


def test_depths_are_the_ready_messages_of_each_queue(broker: str, names: list[str]) -> None:
    sent, declared_empty, never_declared = names
    send_tasks(broker, sent, [0, 5, 9])
    with kombu.Connection(broker) as connection:
        kombu.Queue(declared_empty, kombu.Exchange(declared_empty), declared_empty)(connection.channel()).declare()

    assert queue_depths(broker, names) == {sent: 3, declared_empty: 0, never_declared: 0}

    with kombu.Connection(broker) as connection:
        queue = kombu.Queue(sent, kombu.Exchange(sent), sent)(connection.channel())
        assert queue.get(no_ack=True) is not None
        assert queue_depths(broker, names) == {sent: 2, declared_empty: 0, never_declared: 0}
        queue.purge()
    assert queue_depths(broker, names) == {sent: 0, declared_empty: 0, never_declared: 0}

    # Reading a depth declares nothing: the missing queue is still missing.
    with kombu.Connection(broker) as connection:
        with pytest.raises(connection.channel_errors):
            connection.channel().queue_declare(queue=never_declared, passive=True)


def test_no_queues_asked_no_depths(broker: str) -> None:
    assert queue_depths(broker, []) == {}


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:1//", "redis://127.0.0.1:1/0"])
def test_a_broker_that_is_down_raises_at_once(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(OperationalError):
        queue_depths(url, ["gpu-transcription"], timeout=1.0)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("scheme", ["amqp://guest:guest@", "redis://"])
def test_a_broker_that_never_answers_raises_within_the_timeout(scheme: str) -> None:
    """A listener that accepts connections (the kernel does) and never says a word, as a broker
    behind a dead NAT or a hung process: the socket timeouts must end the wait."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        started = time.monotonic()
        with pytest.raises(OperationalError):
            queue_depths(f"{scheme}127.0.0.1:{silent.getsockname()[1]}/0", ["gpu-transcription"], timeout=1.0)
        assert time.monotonic() - started < 10


def test_the_exporter_serves_the_depth_of_each_compute_class_queue(dagster_env, tmp_path, monkeypatch) -> None:
    """`media-lake metrics serve` with a Celery broker configured (a Redis database of the test's
    own, so the compute classes' real queue names collide with nothing)."""
    broker = "redis://127.0.0.1:6379/12"
    with kombu.Connection(broker) as connection:
        connection.default_channel.client.flushdb()
    try:
        send_tasks(broker, "cpu-nlp", [0, 0])
        send_tasks(broker, "gpu-transcription", [0])
        monkeypatch.setenv(CELERY_BROKER_ENV, broker)
        port = free_port()
        exporter = _serve(port, tmp_path / "exporter.log")
        try:
            samples = _samples(_scrape(port))
        finally:
            stop(exporter)
    finally:
        with kombu.Connection(broker) as connection:
            connection.default_channel.client.flushdb()
    depths = {dict(labels)["queue"]: value for (name, labels), value in samples.items() if name.endswith("queue_depth")}
    assert depths == {"cpu-nlp": 2, "gpu-transcription": 1, "cpu-normalization": 0, "cpu-metadata": 0}
    assert samples[("media_lake_exporter_section_up", (("section", "queues"),))] == 1


def test_an_exporter_whose_broker_is_down_serves_the_rest_and_logs_why_as_json(
    dagster_env, tmp_path, monkeypatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        closed = taken.getsockname()[1]  # free once the block ends: nothing listens there
    monkeypatch.setenv(CELERY_BROKER_ENV, f"redis://127.0.0.1:{closed}/0")
    log = tmp_path / "exporter.log"
    port = free_port()
    exporter = _serve(port, log)
    try:
        samples = _samples(_scrape(port))
    finally:
        stop(exporter)
    sections = {dict(labels)["section"]: value for (name, labels), value in samples.items() if name.endswith("up")}
    assert sections.pop("queues") == 0 and set(sections.values()) == {1}
    assert not [name for name, _ in samples if name.endswith("queue_depth")]
    notices = [line for line in log.read_text().splitlines() if line.startswith("media-lake metrics")]
    logged = [json.loads(line) for line in log.read_text().splitlines() if line not in notices]
    assert logged and {line["event"] for line in logged} == {"media-lake metrics: reading queues failed"}
    assert {line["level"] for line in logged} == {"error"} and all("Error" in line["exception"] for line in logged)
