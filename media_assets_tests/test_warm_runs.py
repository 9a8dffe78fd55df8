"""Runs start warm: the code server's run processes are forked from a fork server that imported the
heavy libraries once (media_assets/warm_runs.py)."""

from __future__ import annotations

import sys

import pytest

from media_assets import warm_runs


def _report(queue) -> None:
    """In the started process: which preloaded modules it holds before importing anything."""
    queue.put({name: name in sys.modules for name in warm_runs.PRELOADED_MODULES})


def _started_with(context) -> dict[str, bool]:
    queue = context.Queue()
    process = context.Process(target=_report, args=(queue,))
    process.start()
    held = queue.get(timeout=300)
    process.join(timeout=60)
    assert process.exitcode == 0
    return held


@pytest.mark.slow
def test_a_run_process_starts_with_every_preloaded_module_imported() -> None:
    context = warm_runs.run_context({}, gpus=0)
    assert context.get_start_method() == "forkserver"
    held = _started_with(context)
    assert all(held.values()), f"not preloaded (an import failed in the fork server?): {held}"


def test_spawn_on_request_on_gpu_hosts_and_a_clear_error_for_an_unknown_method() -> None:
    assert warm_runs.run_context({warm_runs.START_METHOD_ENV: "spawn"}, gpus=0).get_start_method() == "spawn"
    assert warm_runs.run_context({}, gpus=1).get_start_method() == "spawn"  # CUDA does not survive a fork
    with pytest.raises(ValueError, match="forkserver or spawn"):
        warm_runs.run_context({warm_runs.START_METHOD_ENV: "fork"})


def test_every_code_server_starts_runs_with_that_context(monkeypatch) -> None:
    from dagster._grpc.server import DagsterApiServer

    monkeypatch.setenv(warm_runs.START_METHOD_ENV, "spawn")
    server = object.__new__(DagsterApiServer)
    server._mp_ctx = warm_runs.multiprocessing.get_context("fork")  # what __init__ stores is ignored
    assert server._mp_ctx.get_start_method() == "spawn"
