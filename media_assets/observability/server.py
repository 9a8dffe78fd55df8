"""`media-lake metrics serve`: the collector behind an HTTP /metrics endpoint, until SIGTERM or Ctrl-C.

The event log is read from the start once before the port opens (9 s for 1,000 runs and 10,000
dead letters on SQLite, benchmarks/metrics_scrape.py), so no scrape pays for the history and a
readiness probe on the port holds traffic until then."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server

from media_assets.defs.orchestration.executors import CELERY_BROKER, CELERY_BROKER_ENV, EXECUTOR_ENV
from media_assets.instance import dagster_home
from media_assets.observability.exporter import PipelineCollector
from media_assets.observability.logs import log_this_process
from media_assets.resources import LakeResource

DEFAULT_PORT = 9464  # the port OpenTelemetry's Prometheus exporter registered; free of Dagster's


def celery_broker(environ=os.environ) -> str | None:
    """The broker whose queue depths are served, when Celery is configured: the executor, or its
    broker set (the exporter's Deployment gets the workers' broker Secret, not the executor)."""
    return CELERY_BROKER if environ.get(EXECUTOR_ENV) == "celery" or environ.get(CELERY_BROKER_ENV) else None


def serve(port: int = DEFAULT_PORT, host: str = "0.0.0.0", out=sys.stdout) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log_this_process()
    dagster_home()
    with dg.DagsterInstance.get() as instance:  # not get_instance(): pool slots are the workers' hosts' to set
        collector = PipelineCollector(instance, LakeResource.from_env().store(), celery_broker())
        started = time.perf_counter()
        for _ in collector.collect():  # the whole history, read before the port opens: scrapes stay incremental
            pass
        print(f"media-lake metrics: read the history in {time.perf_counter() - started:.1f} s", file=out, flush=True)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        server, thread = start_http_server(port, addr=host, registry=registry)
        print(f"media-lake metrics on http://{host}:{server.server_port}/metrics", file=out, flush=True)
        stop.wait()
        server.shutdown()
        thread.join()
