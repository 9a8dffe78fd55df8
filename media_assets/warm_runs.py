"""Runs launched by the daemon or the UI start warm: forked from a process that has already imported
torch, pyannote.audio, faster-whisper, spaCy, sentence-transformers, dagster and this package
(media_assets/run_preload.py lists them).

Dagster's code server starts each run in a new interpreter (multiprocessing's "spawn"), which then
imports all of that again before its first step: about 25 s of a 2-core machine per run, most of it
pyannote.audio's import chain (lightning imports torchmetrics, which imports torchvision and
torch._dynamo), against 1-3 s for a short episode's steps. The code server has no setting for
this, so its multiprocessing context becomes "forkserver" preloading media_assets.run_preload, the
idiom Dagster's multiprocess executor offers for steps (`start_method: forkserver: preload_modules`).
The fork server is started as the code server loads this code location and imports them once, in a
process of its own (no threads of the code server's), while the code server goes on; every run is
forked from there, with its share of the cores (`share_cores`). A run launched before those
imports end (about 25 s here) waits for them inside its launch, within Dagster's 60 s launch
timeout. Models are still loaded per run, on first use (the libraries' thread pools are not
fork-safe once started).

`MEDIA_LAKE_RUN_START_METHOD=spawn` restores Dagster's behaviour. Spawn is also used where
forkserver does not exist (Windows) and on hosts with a GPU: importing spaCy (thinc) asks torch
whether CUDA is available, which starts the CUDA driver in the fork server, and a process forked
after that cannot use the GPU.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import sys

import ctranslate2
import dagster as dg
from dagster._core.errors import DagsterHomeNotSetError
from dagster._grpc.server import DagsterApiServer

START_METHOD_ENV = "MEDIA_LAKE_RUN_START_METHOD"
# Threads of each run's libraries: read by OpenMP (torch) when the fork server imports torch, and by
# CTranslate2 when a run loads Whisper.
THREADS_ENV = "OMP_NUM_THREADS"
PRELOAD_MODULE = "media_assets.run_preload"


def run_context(environ=os.environ, gpus: int | None = None) -> multiprocessing.context.BaseContext:
    """The multiprocessing context the code server starts runs with (`gpus`: the host's, by default
    as CTranslate2 counts them)."""
    method = environ.get(START_METHOD_ENV, "forkserver")
    if method not in ("forkserver", "spawn"):
        raise ValueError(f"{START_METHOD_ENV}={method!r}: choose forkserver or spawn")
    if gpus is None:
        gpus = ctranslate2.get_cuda_device_count()
    if gpus or method not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([PRELOAD_MODULE])
    return context


def share_cores(runs_at_once: int, environ=os.environ) -> None:
    """Give each of `runs_at_once` runs its share of the cores (at least 1 thread), unless
    THREADS_ENV is set already; before the fork server starts, which passes it on to every run. On 2
    cores, two runs of one thread each cleared the benchmark batch in 201 s, of two threads in 215 s
    (single repeats, benchmarks/README.md)."""
    environ.setdefault(THREADS_ENV, str(max(1, (os.cpu_count() or 1) // runs_at_once)))


# A data descriptor on the class wins over the "spawn" context the server's __init__ stores on its
# instance, also for the server that imports this module (it loads the code location in __init__,
# after storing that context).
DagsterApiServer._mp_ctx = property(lambda server: run_context(), lambda server, value: None)


def _loaded_by_code_server() -> bool:
    """Whether a code server (`dagster api grpc`) is loading this module: its constructor is on the stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if isinstance(frame.f_locals.get("self"), DagsterApiServer):
            return True
        frame = frame.f_back
    return False


def _warm_up() -> None:
    """In a code server: share the cores among the runs the instance's queue allows at once, and
    start the fork server's imports now (this returns at once)."""
    from media_assets.instance import runs_at_once

    try:
        with dg.DagsterInstance.get() as instance:
            share_cores(runs_at_once(instance))
    except DagsterHomeNotSetError:
        pass  # no instance to ask: the libraries' own thread counts
    multiprocessing.forkserver.ensure_running()


if _loaded_by_code_server() and run_context().get_start_method() == "forkserver":
    _warm_up()
