"""`media-lake metrics serve`: the collector behind an HTTP /metrics endpoint, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server

from media_assets.instance import dagster_home
from media_assets.observability.exporter import PipelineCollector
from media_assets.resources import LakeResource

DEFAULT_PORT = 9464  # the port OpenTelemetry's Prometheus exporter registered; free of Dagster's


def serve(port: int = DEFAULT_PORT, host: str = "0.0.0.0", out=sys.stdout) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    dagster_home()
    with dg.DagsterInstance.get() as instance:  # not get_instance(): pool slots are the workers' hosts' to set
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PipelineCollector(instance, LakeResource.from_env().store()))
        server, thread = start_http_server(port, addr=host, registry=registry)
        print(f"media-lake metrics on http://{host}:{server.server_port}/metrics", file=out, flush=True)
        stop.wait()
        server.shutdown()
        thread.join()
