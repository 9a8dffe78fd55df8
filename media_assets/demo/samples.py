"""Generators of media files with known properties, for the demo and the tests.

Every generator takes an output ``pathlib.Path`` (plus parameters), creates the
parent folders, writes the file and returns the path. Outputs are
deterministic: the same arguments give a byte-identical file on the same
machine (fixed seeds, ``-fflags +bitexact -flags +bitexact -map_metadata -1``
for ffmpeg, espeak-ng is deterministic). Needs ffmpeg on PATH; ``speech`` also
needs espeak-ng.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
from mutagen.id3 import COMM, ID3, TALB, TCON, TDRC, TIT2, TPE1

from media_assets.demo.scripts import THREE_TOPICS, TOPIC_SCRIPTS

# Output options that keep ffmpeg from writing versions, dates or input metadata.
_BITEXACT = ("-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1")

DEFAULT_TAGS = {
    "title": "Sample Episode",
    "artist": "Media Lake",
    "album": "Demo Podcast",
    "date": "2026",
    "genre": "Podcast",
    "comment": "demo comment",
}
_ID3_FRAMES = {
    "title": TIT2,
    "artist": TPE1,
    "album": TALB,
    "date": TDRC,
    "genre": TCON,
}

DEFAULT_CUES = [
    (0.5, 2.0, "Hello from the subtitle track"),
    (2.5, 4.0, "Second cue"),
    (4.5, 5.5, "Third cue"),
]
VIDEO_METADATA = {
    "creation_time": "2026-01-02T03:04:05Z",
    "title": "Sample video with subtitles",
    "location": "+48.8577+002.2950/",
}


# --- helpers -----------------------------------------------------------------


def _ffmpeg(*args: str | os.PathLike) -> None:
    """Run ffmpeg quietly; raise RuntimeError with its stderr if it fails."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (not found on PATH)")
    cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *map(str, args)]
    try:
        subprocess.run(cmd, check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"ffmpeg failed: {exc.stderr.decode(errors='replace')}") from exc


def _prepare(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples in [-1, 1], shape (frames,) or (frames, channels), as 16-bit PCM."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def _write_audio(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write a .wav directly; any other suffix via a temporary wav and ffmpeg's default encoder for it."""
    path = _prepare(path)
    if path.suffix.lower() == ".wav":
        _write_wav(path, samples, sample_rate)
        return path
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        _write_wav(wav, samples, sample_rate)
        _ffmpeg("-i", wav, *_BITEXACT, path)
    return path


def _at_loudness(samples: np.ndarray, sample_rate: int, lufs: float) -> np.ndarray:
    """Scale samples so that their BS.1770 integrated loudness (pyloudnorm) is `lufs`."""
    measured = pyloudnorm.Meter(sample_rate).integrated_loudness(samples)
    scaled = samples * 10 ** ((lufs - measured) / 20)
    peak = float(np.max(np.abs(scaled)))
    if peak > 1.0:
        raise ValueError(f"{lufs} LUFS would clip this signal (peak {peak:.2f} of full scale)")
    return scaled


def _strip_id3v2(data: bytes) -> bytes:
    """Drop leading ID3v2 tags (10-byte header, syncsafe size, optional footer)."""
    while data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | (byte & 0x7F)
        footer = 10 if data[5] & 0x10 else 0
        data = data[10 + size + footer :]
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _testsrc(seconds: float, size: str, rate: int) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}")


_H264 = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-threads", "1")
# CBR 128k; no ID3 from ffmpeg (mutagen writes the tag).
_MP3_128K = ("-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "0")


# --- audio -------------------------------------------------------------------


def tone(
    path: Path,
    seconds: float = 10.0,
    lufs: float = -23.0,
    freq: float = 440.0,
    sample_rate: int = 44100,
    channels: int = 2,
) -> Path:
    """A sine of `freq` Hz, identical on all channels, `seconds` long.

    Integrated loudness (pyloudnorm, BS.1770) is `lufs` within 0.1 LU. A .wav is
    16-bit PCM; another suffix (.flac, .mp3, ...) is encoded by ffmpeg from it
    (lossless .flac keeps the loudness; lossy codecs move it: a 440 Hz tone in
    .mp3 at ffmpeg's default 128k measures about 0.45 LU low). `seconds` must
    be >= 0.4 (pyloudnorm's block size).
    """
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    mono = np.sin(2 * np.pi * freq * t)
    samples = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    return _write_audio(path, _at_loudness(samples, sample_rate, lufs), sample_rate)


def noise(
    path: Path,
    seconds: float,
    lufs: float,
    sample_rate: int = 48000,
    seed: int = 0,
    color: str = "pink",
) -> Path:
    """Mono Gaussian noise, pink (1/f power) or white, from numpy seed `seed`.

    Integrated loudness (pyloudnorm) is `lufs` within 0.1 LU; crest factor is
    high (peak about 12-15 dB above RMS). Written like `tone`.
    """
    if color not in ("pink", "white"):
        raise ValueError(f"color must be 'pink' or 'white', not {color!r}")
    white = np.random.default_rng(seed).standard_normal(round(seconds * sample_rate))
    samples = white
    if color == "pink":
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(len(white), 1 / sample_rate)
        spectrum[1:] /= np.sqrt(freqs[1:])
        spectrum[0] = 0
        samples = np.fft.irfft(spectrum, len(white))
    samples = samples / np.max(np.abs(samples))
    return _write_audio(path, _at_loudness(samples, sample_rate, lufs), sample_rate)


def speech(
    path: Path,
    text: str,
    voice: str = "en-us",
    pitch: int = 50,
    speed: int = 160,
    sample_rate: int | None = None,
) -> Path:
    """`text` spoken by espeak-ng: mono 16-bit WAV at 22050 Hz (espeak-ng's rate).

    With `sample_rate`, or a suffix other than .wav, ffmpeg converts the result.
    Raises RuntimeError if espeak-ng is not installed.
    """
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (not found on PATH); cannot render speech")
    path = _prepare(path)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed)]
        cmd += ["-w", str(wav), "--stdin"]  # text on stdin: safe for any leading '-'
        subprocess.run(cmd, input=text.encode(), check=True, capture_output=True)
        if sample_rate is None and path.suffix.lower() == ".wav":
            shutil.move(wav, path)
        else:
            rate = ("-ar", str(sample_rate)) if sample_rate else ()
            _ffmpeg("-i", wav, *rate, *_BITEXACT, path)
    return path


def mp3_with_id3(
    path: Path,
    seconds: float = 6.0,
    tags: dict[str, str] | None = None,
    source: Path | None = None,
) -> Path:
    """An MP3 (libmp3lame, CBR 128 kb/s, with a Xing/LAME info frame) tagged with ID3v2.4.

    Audio is the whole of `source` (a wav), or else a `seconds` long 440 Hz
    stereo tone at -23 LUFS, 44.1 kHz. Tags are DEFAULT_TAGS updated by `tags`
    (keys title, artist, album, date, genre, comment; comment is COMM lang 'eng',
    empty description).
    """
    path = _prepare(path)
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            source = tone(Path(tmp) / "tone.wav", seconds=seconds)
        _ffmpeg("-i", source, *_MP3_128K, *_BITEXACT, path)
    values = {**DEFAULT_TAGS, **(tags or {})}
    id3 = ID3()
    for key, frame in _ID3_FRAMES.items():
        id3.add(frame(encoding=3, text=values[key]))
    id3.add(COMM(encoding=3, lang="eng", desc="", text=values["comment"]))
    id3.save(path, v2_version=4)
    return path


CHANNEL_COUNTS = {"mono": 1, "stereo": 2, "5.1": 6, "7.1": 8}


def channel_tones(
    path: Path,
    layouts: tuple[str, ...] = ("5.1",),
    seconds: float = 6.0,
    sample_rate: int = 48000,
    amplitude: float = 0.05,
    codec_args: tuple[str, ...] = (),
) -> Path:
    """One audio stream per entry of `layouts` (ffmpeg layout names), each channel a sine of its
    own frequency (stream s, channel c: 220 + 110 * (c + 8 s) Hz) at `amplitude`. ffmpeg writes
    it with `codec_args` (e.g. ("-c:a", "ac3")) into the container the suffix names."""
    path = _prepare(path)
    inputs: list[str] = []
    for s, layout in enumerate(layouts):
        exprs = "|".join(f"{amplitude}*sin(2*PI*{220 + 110 * (c + 8 * s)}*t)" for c in range(CHANNEL_COUNTS[layout]))
        inputs += ["-f", "lavfi", "-i", f"aevalsrc={exprs}:c={layout}:s={sample_rate}:d={seconds}"]
    maps = [arg for s in range(len(layouts)) for arg in ("-map", str(s))]
    _ffmpeg(*inputs, *maps, *codec_args, *_BITEXACT, path)
    return path


# --- video -------------------------------------------------------------------


def video_with_subtitles(
    path: Path,
    seconds: float = 6.0,
    size: str = "320x240",
    rate: int = 25,
    cues: list[tuple[float, float, str]] | None = None,
) -> Path:
    """An MP4: testsrc2 video (H.264, yuv420p), 440 Hz mono sine (AAC, 48 kHz), mov_text subtitles.

    Streams in order: video, audio, subtitle (language 'eng'), made from `cues`
    (default DEFAULT_CUES). Container tags: VIDEO_METADATA (creation_time,
    title, location in ISO 6709).
    """
    path = _prepare(path)
    cues = DEFAULT_CUES if cues is None else cues
    srt = "\n".join(
        f"{i}\n{_srt_time(start)} --> {_srt_time(end)}\n{text}\n" for i, (start, end, text) in enumerate(cues, 1)
    )
    metadata = [arg for key, value in VIDEO_METADATA.items() for arg in ("-metadata", f"{key}={value}")]
    with tempfile.TemporaryDirectory() as tmp:
        srt_path = Path(tmp) / "cues.srt"
        srt_path.write_text(srt, encoding="utf-8")
        _ffmpeg(
            *_testsrc(seconds, size, rate),
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-i", srt_path,
            "-map", "0:v", "-map", "1:a", "-map", "2:s",
            *_H264, "-c:a", "aac", "-b:a", "96k", "-c:s", "mov_text",
            "-metadata:s:s:0", "language=eng",
            *_BITEXACT, *metadata,
            path,
        )  # fmt: skip
    return path


def video_without_audio(path: Path, seconds: float = 3.0, size: str = "320x240", rate: int = 25) -> Path:
    """An MP4 with a single stream: testsrc2 video (H.264, yuv420p), no audio."""
    path = _prepare(path)
    _ffmpeg(*_testsrc(seconds, size, rate), *_H264, *_BITEXACT, path)
    return path


# --- broken inputs -----------------------------------------------------------


def empty_file(path: Path) -> Path:
    """A 0-byte file."""
    path = _prepare(path)
    path.write_bytes(b"")
    return path


def random_bytes(path: Path, size: int = 64_000, seed: int = 0) -> Path:
    """`size` pseudo-random bytes from numpy seed `seed` (no media header at all)."""
    path = _prepare(path)
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path


def truncated_mp3(path: Path, source_mp3: Path, keep_bytes: int = 400) -> Path:
    """The first `keep_bytes` bytes of `source_mp3`'s audio, its ID3v2 tag removed.

    For an mp3 from `mp3_with_id3` (whose first frame is a 417-byte Xing/LAME
    info frame at 128 kb/s, 44.1 kHz) 400 bytes is a cut-off info frame and no
    audio frame: checked with ffmpeg 5.1 that
    ``ffmpeg -v error -i file -map 0:a:0 -f null -`` decodes 0 audio samples.
    """
    path = _prepare(path)
    path.write_bytes(_strip_id3v2(Path(source_mp3).read_bytes())[:keep_bytes])
    return path


def short_but_decodable_mp3(path: Path, source_mp3: Path, keep_fraction: float = 0.5) -> Path:
    """`source_mp3` cut to its ID3 tag plus the first `keep_fraction` of its audio bytes.

    ffmpeg decodes about `keep_fraction` of the original duration, while the
    Xing header still declares the full length (ffprobe's format duration).
    """
    path = _prepare(path)
    data = Path(source_mp3).read_bytes()
    audio = _strip_id3v2(data)
    tag_length = len(data) - len(audio)
    path.write_bytes(data[: tag_length + round(len(audio) * keep_fraction)])
    return path


def text_as_media(path: Path) -> Path:
    """A plain UTF-8 text file, whatever media suffix the caller gives it."""
    path = _prepare(path)
    path.write_text(
        "This is not a media file, only text with a media file name.\n",
        encoding="utf-8",
    )
    return path


def sidecar(media_path: Path) -> Path:
    """Write `<media_path>.sha256` in sha256sum format with the correct digest; return its path."""
    return _write_sidecar(Path(media_path), _sha256(media_path))


def wrong_sidecar(media_path: Path) -> Path:
    """Write `<media_path>.sha256` in sha256sum format with a digest that is certainly wrong."""
    digest = _sha256(media_path)
    # Flip the first hex digit, so the digest differs for sure.
    wrong = f"{int(digest[0], 16) ^ 0xF:x}{digest[1:]}"
    return _write_sidecar(Path(media_path), wrong)


def _write_sidecar(media_path: Path, digest: str) -> Path:
    out = media_path.with_name(media_path.name + ".sha256")
    out.write_text(f"{digest}  {media_path.name}\n", encoding="utf-8")
    return out


def symlink_outside(link_path: Path, target: Path) -> Path:
    """A symlink at `link_path` pointing to the absolute path of `target` (replaces an old link)."""
    link_path = _prepare(link_path)
    if link_path.is_symlink():
        link_path.unlink()
    link_path.symlink_to(Path(target).absolute())
    return link_path


# --- demo --------------------------------------------------------------------

_DIALOGUE = [
    ("en-us", 35, "Welcome back to Media Lake, the show about tidy audio and video data. Today: loudness."),
    ("en+f3", 75, "Thanks for having me. Loudness is measured in LUFS. Most podcasts aim for about minus sixteen."),
    ("en-us", 35, "So why do some episodes still sound so quiet?"),
    ("en+f3", 75, "Often nobody normalized them. A pipeline can measure every file and fix it automatically."),
]  # fmt: skip

_MONOLOGUE = (
    "This is episode two of the demo podcast. Every file in the lake gets a checksum, a transcript and its metadata."
)


@dataclass(frozen=True)
class SpokenTurn:
    """Ground truth for one turn of a `conversation`: who spoke, when, and what."""

    speaker: str
    start: float
    end: float
    text: str


def conversation(path: Path, turns: list[tuple[str, int, str]], gap: float = 0.5) -> list[SpokenTurn]:
    """Speak each (voice, pitch, text) turn with espeak-ng and join them with `gap` seconds of
    silence into one mono WAV; return the true turns (speaker = "<voice>/<pitch>") in seconds.
    Turn boundaries are exact: they are counted in samples."""
    path = _prepare(path)
    frames: list[bytes] = []
    truth: list[SpokenTurn] = []
    cursor = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (voice, pitch, text) in enumerate(turns):
            turn = speech(Path(tmp) / f"turn{i}.wav", text, voice=voice, pitch=pitch)
            with wave.open(str(turn), "rb") as f:
                params = f.getparams()
                frames.append(f.readframes(f.getnframes()))
                rate, count = f.getframerate(), f.getnframes()
            truth.append(SpokenTurn(f"{voice}/{pitch}", cursor / rate, (cursor + count) / rate, text))
            cursor += count + round(gap * rate)
    silence = b"\0" * (round(gap * params.framerate) * params.sampwidth * params.nchannels)
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(silence.join(frames))
    return truth


def rttm(turns: list[SpokenTurn], uri: str) -> str:
    """The turns in RTTM, the format diarization scorers (pyannote.metrics, dscore) read."""
    return "".join(
        f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n" for t in turns
    )


def demo_episodes(folder: Path) -> list[Path]:
    """Write the demo episodes into `folder` and return their paths.

    - episode01_interview.wav: two espeak-ng voices (en-us -p 35, en+f3 -p 75), 0.5 s gaps, 22050 Hz mono
    - episode02_monologue.mp3: speech, MP3 128k with ID3v2.4 tags
    - episode03_video.mp4: video + AAC audio + mov_text subtitles (see video_with_subtitles)
    - episode04_quiet_tone.flac: 440 Hz tone at -35 LUFS, 8 s
    - episode05_three_topics.mp3: about 3 minutes on cooking (host), astronomy (guest), then football
      (host), from `scripts.THREE_TOPICS`; ID3-tagged
    Without espeak-ng the speech episodes are tones instead (with a warning).
    """
    folder = Path(folder)
    interview = folder / "episode01_interview.wav"
    monologue = folder / "episode02_monologue.mp3"
    topics = folder / "episode05_three_topics.mp3"
    mp3_tags = {"title": "Episode 2: Checksums and transcripts"}
    topics_tags = {"title": "Episode 5: Kitchen, cosmos and football"}
    if shutil.which("espeak-ng"):
        conversation(interview, _DIALOGUE)
        with tempfile.TemporaryDirectory() as tmp:
            spoken = speech(Path(tmp) / "monologue.wav", _MONOLOGUE, sample_rate=44100)
            mp3_with_id3(monologue, tags=mp3_tags, source=spoken)
            voices = [_DIALOGUE[0][:2], _DIALOGUE[1][:2], _DIALOGUE[0][:2]]
            turns = [(*voice, " ".join(TOPIC_SCRIPTS[topic])) for voice, topic in zip(voices, THREE_TOPICS)]
            conversation(Path(tmp) / "topics.wav", turns, gap=0.8)
            mp3_with_id3(topics, tags=topics_tags, source=Path(tmp) / "topics.wav")
    else:
        warnings.warn(
            "espeak-ng not found: demo speech episodes are replaced by tones",
            stacklevel=2,
        )
        tone(
            interview,
            seconds=12.0,
            lufs=-16.0,
            freq=220.0,
            sample_rate=22050,
            channels=1,
        )
        mp3_with_id3(monologue, tags=mp3_tags)
        mp3_with_id3(topics, seconds=20.0, tags=topics_tags)
    return [
        interview,
        monologue,
        video_with_subtitles(folder / "episode03_video.mp4"),
        tone(folder / "episode04_quiet_tone.flac", seconds=8.0, lufs=-35.0),
        topics,
    ]


@dataclass(frozen=True)
class Upload:
    name: str  # where it lands, relative to the inbox
    path: Path
    fate: str  # "new" (a distinct good episode), "copy" (same bytes as a new one) or "bad"


def mixed_batch(folder: Path) -> list[Upload]:
    """30 uploads whose fates are known: 12 distinct good episodes (10 tones of 2 s, an ID3-tagged
    MP3, a subtitled video), 8 copies of good ones under other names, and 10 bad ones (text named
    as media, empty files, random bytes, cut-off MP3s, a blip below the minimum duration, a file
    whose sidecar checksum is wrong). Sidecars, where written, sit beside their files."""
    folder = Path(folder)
    good = [tone(folder / f"tone{n}.wav", seconds=2.0, lufs=-20.0, freq=300.0 + 60 * n) for n in range(10)]
    good.append(mp3_with_id3(folder / "tagged.mp3", seconds=3.0, tags={"title": "Batch episode"}))
    good.append(video_with_subtitles(folder / "video.mp4", seconds=4.0))
    bad = [
        text_as_media(folder / "bad/notes.mp4"),
        text_as_media(folder / "bad/notes.wav"),
        empty_file(folder / "bad/empty.wav"),
        empty_file(folder / "bad/empty.mp3"),
        random_bytes(folder / "bad/noise.mov", seed=1),
        random_bytes(folder / "bad/noise.flac", seed=2),
        truncated_mp3(folder / "bad/cut.mp3", good[10], keep_bytes=400),
        truncated_mp3(folder / "bad/cut2.mp3", good[10], keep_bytes=300),
        tone(folder / "bad/blip.wav", seconds=0.5),
        tone(folder / "bad/mislabeled.wav", seconds=2.0, freq=1000.0),
    ]
    wrong_sidecar(bad[-1])
    return [
        *(Upload(f"show/{n:02}-{path.name}", path, "new") for n, path in enumerate(good)),
        *(Upload(f"copies/again-{n}-{good[n].name}", good[n], "copy") for n in range(8)),
        *(Upload(f"show/{path.name}", path, "bad") for path in bad),
    ]
