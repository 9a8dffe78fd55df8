"""Celery queue depths (messages waiting), read from the broker for the Prometheus exporter.
Works with both brokers the project supports: RabbitMQ (py-amqp) and Redis, through kombu."""

from __future__ import annotations

from collections.abc import Iterable

import kombu

# Options that bound each blocking socket operation, by kombu driver type: without them a broker
# that accepts the connection but never answers would hang the scrape.
_SOCKET_TIMEOUTS = {
    "amqp": ("read_timeout", "write_timeout"),
    "redis": ("socket_timeout", "socket_connect_timeout"),
}


# One connection attempt and a read per compute class stay well inside a 10 s scrape timeout even
# when the broker accepts and never answers.
DEFAULT_TIMEOUT = 1.0


def queue_depths(broker_url: str, queues: Iterable[str], timeout: float = DEFAULT_TIMEOUT) -> dict[str, int]:
    """Ready messages per queue; a queue the broker does not know yet has depth 0.

    A passive `queue_declare` only looks the queue up, it never creates one, and both transports
    answer it with the count of ready messages: RabbitMQ from the queue itself, kombu's Redis
    transport by summing the queue's lists, Celery's priority sub-lists included. Each broker
    operation is bounded by `timeout` seconds (one connection attempt, then one read per queue);
    raises if the broker cannot be reached."""
    with kombu.Connection(broker_url, connect_timeout=timeout) as connection:
        for option in _SOCKET_TIMEOUTS.get(connection.transport.driver_type, ()):
            connection.transport_options[option] = timeout
        connection.ensure_connection(max_retries=0)  # one attempt: a scrape does not wait
        depths = {}
        for name in queues:
            # RabbitMQ closes a channel on a passive declare of a missing queue: one channel each.
            channel = connection.channel()
            try:
                depths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except connection.channel_errors:
                depths[name] = 0  # no such queue yet: nothing was ever sent to it
            finally:
                channel.close()
        return depths
