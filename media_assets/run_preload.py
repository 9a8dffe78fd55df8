"""What the fork server of media_assets/warm_runs.py imports before it forks any run: what every
episode run imports. The fork server imports this one module; a module below that fails to import
is reported on stderr and skipped (runs then import it themselves, and fail there if they must).
multiprocessing's own preload skips only ImportError: anything else raised would end the fork
server, and with it every later run's launch."""

from __future__ import annotations

import importlib
import sys
import traceback

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


def preload(modules: list[str]) -> list[str]:
    """Import each of `modules`; the names of those that failed, each reported on stderr."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
            print(f"media-lake: run preload: {name} not preloaded:\n{traceback.format_exc()}", file=sys.stderr)
    return failed


preload(PRELOADED_MODULES)
