"""Runs start warm: the code server's run processes are forked from a fork server that imported the
heavy libraries once (media_assets/warm_runs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from media_assets import run_preload, warm_runs
from media_assets.instance import MAX_CONCURRENT_RUNS_ENV, dagster_yaml


def _report(queue) -> None:
    """In the started process: which preloaded modules it holds before importing anything."""
    queue.put({name: name in sys.modules for name in run_preload.PRELOADED_MODULES})


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


def test_a_module_that_fails_to_preload_is_reported_and_skipped(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('no GPU driver here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_preload.preload(["raises_on_import", "colorsys"]) == ["raises_on_import"]
    assert "colorsys" in sys.modules  # the next module is still preloaded
    err = capsys.readouterr().err
    assert "raises_on_import not preloaded" in err and "no GPU driver here" in err


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of process `pid`'s children (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append((int(stat.parent.name), command))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def test_each_run_gets_its_share_of_the_cores_unless_told() -> None:
    cores = os.cpu_count()
    environ: dict[str, str] = {}
    warm_runs.share_cores(2, environ)
    assert environ == {warm_runs.THREADS_ENV: str(max(1, cores // 2))}
    warm_runs.share_cores(1, environ)  # set already: kept
    assert environ == {warm_runs.THREADS_ENV: str(max(1, cores // 2))}
    more_runs_than_cores: dict[str, str] = {}
    warm_runs.share_cores(cores * 4, more_runs_than_cores)
    assert more_runs_than_cores == {warm_runs.THREADS_ENV: "1"}


def process_environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)


@pytest.mark.slow
def test_a_code_server_starts_its_fork_server_before_any_run(tmp_path) -> None:
    """The ~25 s of preloading happen while the code server loads, not inside the first launch, in
    a fork server whose runs share the cores among the runs the instance's queue allows at once."""
    if warm_runs.run_context().get_start_method() != "forkserver":
        pytest.skip("runs are spawned here (a GPU host, or MEDIA_LAKE_RUN_START_METHOD=spawn): no fork server")
    (tmp_path / "dagster.yaml").write_text(dagster_yaml({MAX_CONCURRENT_RUNS_ENV: "2"}))
    env = {key: value for key, value in os.environ.items() if key != warm_runs.THREADS_ENV}
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "api", "grpc", "--module-name", "media_assets.definitions",
         "--socket", str(tmp_path / "grpc.sock")],
        env={**env, "DAGSTER_HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        fork_servers = []
        while not fork_servers and time.monotonic() < deadline and server.poll() is None:
            time.sleep(1)
            fork_servers = [pid for pid, cmd in children(server.pid) if "multiprocessing.forkserver" in cmd]
        assert fork_servers, f"no fork server under the code server: {server.poll()=}"
        threads = process_environ(fork_servers[0])[warm_runs.THREADS_ENV]
        assert threads == str(max(1, os.cpu_count() // 2))
    finally:
        server.kill()  # a code server that has loaded ignores SIGTERM for minutes (with spawn too)
        server.wait(timeout=60)
