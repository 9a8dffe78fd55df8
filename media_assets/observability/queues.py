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


def queue_depths(broker_url: str, queues: Iterable[str], timeout: float = 3.0) -> dict[str, int]:
    """Ready messages per queue; a queue the broker does not know yet has depth 0.

    A passive `queue_declare` only looks the queue up, it never creates one, and both transports
    answer it with the count of ready messages: RabbitMQ from the queue itself, kombu's Redis
    transport by summing the queue's lists, Celery's priority sub-lists included. Raises if the
    broker cannot be reached within about `timeout` seconds (one retry, no waiting between)."""
    with kombu.Connection(broker_url, connect_timeout=timeout) as connection:
        for option in _SOCKET_TIMEOUTS.get(connection.transport.driver_type, ()):
            connection.transport_options[option] = timeout
        connection.ensure_connection(max_retries=1, interval_start=0)
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
