"""Runs launched by the daemon or the UI start warm: forked from a process that has already imported
torch, pyannote.audio, faster-whisper, spaCy, sentence-transformers, dagster and this package (the
`defs/` modules are still imported by each run, when Dagster loads the definitions).

Dagster's code server starts each run in a new interpreter (multiprocessing's "spawn"), which then
imports all of that again before its first step: about 25 s of a 2-core machine per run, most of it
pyannote.audio's import chain (lightning imports torchmetrics, which imports torchvision and
torch._dynamo), against 1-3 s for a short episode's steps. The code server has no setting for
this, so its multiprocessing context becomes "forkserver" with `PRELOADED_MODULES` preloaded, the
idiom Dagster's multiprocess executor offers for steps (`start_method: forkserver: preload_modules`).
The fork server imports them once, when the code server starts its first run, in a process of its
own (no threads of the code server's), and forks every run from there; models are still loaded per
run, on first use (the libraries' thread pools are not fork-safe once started). The first run's
launch waits for those imports (about 25 s here, within Dagster's 60 s launch timeout).

`MEDIA_LAKE_RUN_START_METHOD=spawn` restores Dagster's behaviour. Spawn is also used where
forkserver does not exist (Windows) and on hosts with a GPU: importing spaCy (thinc) asks torch
whether CUDA is available, which starts the CUDA driver in the fork server, and a process forked
after that cannot use the GPU.
"""

from __future__ import annotations

import multiprocessing
import os

import ctranslate2
from dagster._grpc.server import DagsterApiServer

START_METHOD_ENV = "MEDIA_LAKE_RUN_START_METHOD"
# Imported by the fork server before it forks any run: what every episode run imports.
PRELOADED_MODULES = [
    "media_assets.definitions",
    "media_assets.lib.speech.asr",
    "torch",
    "torchaudio.compliance.kaldi",
    "pyannote.audio",
    "pyannote.audio.pipelines",
    "spacy",
    "sentence_transformers",
]


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
        context.set_forkserver_preload(PRELOADED_MODULES)
    return context


# A data descriptor on the class wins over the "spawn" context the server's __init__ stores on its
# instance, also for a server built before this module was imported (the code server imports the
# code location after building itself).
DagsterApiServer._mp_ctx = property(lambda server: run_context(), lambda server, value: None)
