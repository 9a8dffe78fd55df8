"""Episode runs on a running Dagster deployment (`make dev`, or the webserver of a production
instance), launched through its GraphQL API with dagster-graphql's client: one partitioned
`episode_job` run per episode, the way the UI's Materialize launches them, then polled until each
ends. `media-lake launch` is this from the command line; scripts call `launch` and `wait`."""

from __future__ import annotations

import time
import urllib.parse

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

JOB = "episode_job"
ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def client_for(url: str) -> DagsterGraphQLClient:
    """A client for the webserver at `url` (http[s]://host[:port][/path-prefix])."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a webserver URL: {url!r}")
    return DagsterGraphQLClient(
        parts.hostname, port_number=parts.port, use_https=parts.scheme == "https", path_prefix=parts.path.rstrip("/")
    )


def launch(client: DagsterGraphQLClient, episode_ids: list[str]) -> dict[str, str]:
    """Submit one run of every stage per episode; episode id -> run id. The deployment's run queue
    and pools decide when each starts."""
    return {
        episode_id: client.submit_job_execution(
            JOB, tags={"dagster/partition": episode_id, "media-lake/episode": episode_id}
        )
        for episode_id in episode_ids
    }


def wait(
    client: DagsterGraphQLClient, run_ids: dict[str, str], timeout: float, poll_seconds: float = 2.0
) -> dict[str, dg.DagsterRunStatus]:
    """Poll until every run has ended (or `timeout` seconds passed); episode id -> last status."""
    deadline = time.monotonic() + timeout
    statuses = {episode_id: client.get_run_status(run_id) for episode_id, run_id in run_ids.items()}
    while not set(statuses.values()) <= ENDED and time.monotonic() < deadline:
        time.sleep(poll_seconds)
        statuses = {episode_id: client.get_run_status(run_id) for episode_id, run_id in run_ids.items()}
    return statuses
