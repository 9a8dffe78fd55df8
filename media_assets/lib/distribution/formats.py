"""Distribution files built from an episode's chapters: what a podcast host or player loads as is.

- Podcasting 2.0 JSON chapters (`<podcast:chapters type="application/json+chapters">`), format
  of Podcastindex-org/podcast-namespace docs/examples/chapters/jsonChapters.md, version 1.2.
- A WebVTT chapters track (`<track kind="chapters">`), plus a strict reader to check it.
- An MP3 with an ID3v2.4 tag: episode tags, and a CTOC table of contents over CHAP frames
  (ID3v2 Chapter Frame Addendum), read back with mutagen to check it.

Chapter titles are display strings: every output carries them on one line, whitespace collapsed.
Outputs are byte-deterministic for the same inputs. No Dagster here.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mutagen.id3 import (
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCON,
    TDRC,
    TIT2,
    TPE1,
    TXXX,
    CTOCFlags,
    Encoding,
    ID3NoHeaderError,
)

from media_assets.lib.core import contracts
from media_assets.lib.core.errors import ContractViolation
from media_assets.lib.distribution.settings import DistributionSettings
from media_assets.lib.media.media_tools import SAFE_INPUT, file_url, run_ffmpeg

PODCASTING_CHAPTERS_VERSION = "1.2.0"
PODCASTING_CHAPTERS_MIME = "application/json+chapters"
PODCASTING_CHAPTERS_SCHEMA = "podcasting_chapters"  # schemas/podcasting_chapters.schema.json

TOC_ID = "toc"
TIME_TOLERANCE_S = 0.001

# Episode tag -> ID3v2.4 text frame. "comment" (COMM) and "keywords" (TXXX) are written apart.
_TEXT_FRAMES = {"title": TIT2, "artist": TPE1, "album": TALB, "genre": TCON, "date": TDRC}
KEYWORDS_DESC = "keywords"


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


def chapter_marks(chapters: list[dict]) -> list[Chapter]:
    """The chapters of a `chapters` stage document, as the distribution files carry them."""
    return [Chapter(c["start_time"], c["end_time"], c["title"]) for c in chapters]


class ChapterLike(Protocol):
    """Anything with these (read-only is enough): a chapter from the chapters stage, a dataclass."""

    @property
    def start(self) -> float: ...  # seconds from the episode start

    @property
    def end(self) -> float: ...

    @property
    def title(self) -> str: ...


# --- shared -------------------------------------------------------------------


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) made one space, stripped."""
    return " ".join(str(text).split())


def check_chapters(chapters: Sequence[ChapterLike]) -> None:
    """Raise ContractViolation unless the chapters are non-empty, sorted, non-overlapping and titled."""
    if not chapters:
        raise ContractViolation("no chapters to distribute")
    previous_end = 0.0
    for number, chapter in enumerate(chapters, 1):
        if chapter.start < 0 or chapter.end <= chapter.start:
            raise ContractViolation(f"chapter {number}: start {chapter.start} / end {chapter.end} is not a span")
        if chapter.start < previous_end - TIME_TOLERANCE_S:
            raise ContractViolation(f"chapter {number} starts at {chapter.start}, before the previous one ends")
        if not one_line(chapter.title):
            raise ContractViolation(f"chapter {number} has a blank title")
        previous_end = chapter.end


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# --- Podcasting 2.0 JSON chapters ------------------------------------------------------------------


def podcasting_chapters(
    chapters: Sequence[ChapterLike],
    *,
    title: str | None = None,
    podcast_name: str | None = None,
    author: str | None = None,
) -> dict:
    """The Podcasting 2.0 JSON chapters document (times in seconds, rounded to the millisecond)."""
    check_chapters(chapters)
    document: dict = {"version": PODCASTING_CHAPTERS_VERSION}
    for key, value in (("title", title), ("podcastName", podcast_name), ("author", author)):
        if value is not None and one_line(value):
            document[key] = one_line(value)
    document["chapters"] = [
        {"startTime": round(c.start, 3), "endTime": round(c.end, 3), "title": one_line(c.title)} for c in chapters
    ]
    return validate_podcasting_chapters(document)


def validate_podcasting_chapters(document: dict) -> dict:
    """Raise ContractViolation (naming the field) unless `document` is a valid JSON chapters file.

    Beyond the schema: chapters in ascending `startTime` (the spec assumes it) and `endTime`, when
    given, not before `startTime`.
    """
    contracts.validate_document(PODCASTING_CHAPTERS_SCHEMA, document)
    previous = 0.0
    for index, chapter in enumerate(document["chapters"]):
        field = f"{PODCASTING_CHAPTERS_SCHEMA} JSON: field 'chapters/{index}"
        if chapter["startTime"] < previous:
            raise ContractViolation(f"{field}/startTime': not ascending")
        if "endTime" in chapter and chapter["endTime"] < chapter["startTime"]:
            raise ContractViolation(f"{field}/endTime': before startTime")
        previous = chapter["startTime"]
    return document


# --- WebVTT chapters ----------------------------------------------------------------------------


def vtt_timestamp(seconds: float) -> str:
    """HH:MM:SS.mmm (hours at least two digits)."""
    ms = _ms(seconds)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def vtt_escape(text: str) -> str:
    """Cue text escapes: `&` and `<` must be escaped, `>` is too so a title can never hold `-->`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt_chapters(chapters: Sequence[ChapterLike]) -> str:
    """A WebVTT chapters file: one cue "chapter-N" per chapter, the title as its one-line payload."""
    check_chapters(chapters)
    cues = [
        f"chapter-{number}\n{vtt_timestamp(c.start)} --> {vtt_timestamp(c.end)}\n{vtt_escape(one_line(c.title))}\n"
        for number, c in enumerate(chapters, 1)
    ]
    text = "WEBVTT\n\n" + "\n".join(cues)
    parse_webvtt_cues(text)  # never hand out a file our own strict reader rejects
    return text


_VTT_MAGIC = re.compile(r"WEBVTT(?:[ \t][^\n]*)?")
_VTT_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t]+[^\n]*)?")
_VTT_REFERENCE = re.compile(r"&(?:#(\d+)|#[xX]([0-9a-fA-F]+)|([A-Za-z]+));")
_VTT_NOTE = re.compile(r"NOTE(?:[ \t][^\n]*)?")
_VTT_STYLE_OR_REGION = re.compile(r"(?:STYLE|REGION)[ \t]*")
_VTT_NAMED = {"amp": "&", "lt": "<", "gt": ">", "lrm": "\u200e", "rlm": "\u200f", "nbsp": "\u00a0"}


def _vtt_seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _vtt_unescape(payload: str, where: str) -> str:
    """Plain cue text (a chapter title: no tags) with its character references decoded."""
    if "<" in payload or "&" in _VTT_REFERENCE.sub("", payload):
        raise ContractViolation(f"WebVTT {where}: a tag, or an '&' that starts no character reference: {payload!r}")

    def decode(match: re.Match) -> str:
        decimal, hexadecimal, name = match.groups()
        if name is not None:
            if name not in _VTT_NAMED:
                raise ContractViolation(f"WebVTT {where}: unknown character reference {match.group()!r}")
            return _VTT_NAMED[name]
        code = int(decimal) if decimal is not None else int(hexadecimal, 16)
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise ContractViolation(f"WebVTT {where}: bad character reference {match.group()!r}")
        return chr(code)

    return _VTT_REFERENCE.sub(decode, payload)


def _vtt_blocks(lines: list[str], first: int) -> list[tuple[int, list[str]]]:
    """(1-based line number, lines) of each run of non-blank lines from index `first` on."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for number, line in enumerate(lines[first:], first + 1):
        if line == "":
            current = None
        elif current is None:
            current = [line]
            blocks.append((number, current))
        else:
            current.append(line)
    return blocks


def parse_webvtt_cues(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue of a WebVTT file; ContractViolation on anything malformed.

    Strict, own reading of the WebVTT syntax: an optional BOM, "WEBVTT" alone or followed by a space
    or tab on the first line, header lines up to a blank line, then blocks separated by blank lines.
    A block is a NOTE comment, a STYLE or REGION block (only before the first cue), or a cue: an
    optional identifier line (without "-->"), a timing line `start --> end [settings]`, payload lines. Timestamps
    are [HH+:]MM:SS.mmm; end must be after start and starts must not decrease. Payloads must be
    plain text (no tags) with `&` and `<` escaped; their lines are joined with "\\n".
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\0" in text:
        raise ContractViolation("WebVTT: NUL character")
    lines = text.split("\n")
    if not _VTT_MAGIC.fullmatch(lines[0]):
        raise ContractViolation(f"WebVTT: first line must be 'WEBVTT', got {lines[0][:40]!r}")
    header_end = lines.index("", 1) if "" in lines[1:] else len(lines)
    if any("-->" in line for line in lines[1:header_end]):
        raise ContractViolation("WebVTT: a cue timing line inside the header (no blank line after 'WEBVTT')")
    cues: list[tuple[float, float, str]] = []
    for number, block in _vtt_blocks(lines, header_end):
        where = f"line {number}"
        if _VTT_NOTE.fullmatch(block[0]):
            if any("-->" in line for line in block):
                raise ContractViolation(f"WebVTT {where}: '-->' in a NOTE")
            continue
        timing = 0 if "-->" in block[0] else 1 if len(block) > 1 and "-->" in block[1] else None
        if timing is None:
            if _VTT_STYLE_OR_REGION.fullmatch(block[0]) and not cues:
                continue
            raise ContractViolation(f"WebVTT {where}: a block that is neither a cue nor a comment: {block[0][:40]!r}")
        match = _VTT_TIMING.fullmatch(block[timing])
        if match is None:
            raise ContractViolation(f"WebVTT {where}: bad cue timing line {block[timing]!r}")
        start, end = _vtt_seconds(*match.groups()[:4]), _vtt_seconds(*match.groups()[4:])
        if end <= start:
            raise ContractViolation(f"WebVTT {where}: cue ends ({end}) at or before its start ({start})")
        if cues and start < cues[-1][0]:
            raise ContractViolation(f"WebVTT {where}: cue starts before the previous cue")
        payload = block[timing + 1 :]
        if any("-->" in line for line in payload):
            raise ContractViolation(f"WebVTT {where}: '-->' in a cue payload (a missing blank line?)")
        cues.append((start, end, _vtt_unescape("\n".join(payload), where)))
    return cues


# --- MP3 with ID3v2.4 chapters -------------------------------------------------------------------


def id3_date(value: str) -> str | None:
    """The ID3v2.4 timestamp (yyyy[-MM[-dd[THH[:mm[:ss]]]]]) at the start of `value`.

    Accepts ISO-8601 (a 'T' or a space before the time; fractions and zone are dropped, ID3 has
    none); None when there is no year to start with (an uploader's free-form date is not carried).
    """
    match = re.match(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2}))?)?)?)?)?", value.strip())
    if match is None:
        return None
    parts = [p for p in match.groups() if p is not None]
    separators = ["", "-", "-", "T", ":", ":"]
    return "".join(sep + part for sep, part in zip(separators, parts))


def episode_tags(tags: dict) -> dict:
    """The tags that go into the MP3, normalized as they read back: blank/None dropped, text on one
    line (comment kept as is), date as an ID3 timestamp, keywords a list of non-blank strings.

    A keyword holding a comma is refused: keywords travel comma-joined in one TXXX frame.
    """
    out: dict = {}
    for key in (*_TEXT_FRAMES, "comment"):
        value = tags.get(key)
        if value is None or not str(value).strip():
            continue
        if key == "comment":
            out[key] = str(value).strip()
        elif key == "date":
            if date := id3_date(str(value)):
                out[key] = date
        else:
            out[key] = one_line(str(value))
    keywords = [one_line(str(k)) for k in tags.get("keywords") or [] if k is not None and one_line(str(k))]
    if any("," in k for k in keywords):
        raise ContractViolation(f"keywords must not hold commas (they are comma-joined): {keywords}")
    if keywords:
        out["keywords"] = keywords
    return out


def id3_tag(chapters: Sequence[ChapterLike], tags: dict) -> ID3:
    """The ID3 tag: episode text frames, TXXX:keywords, one ordered top-level CTOC, a CHAP per chapter."""
    check_chapters(chapters)
    normalized = episode_tags(tags)
    tag = ID3()
    for key, frame in _TEXT_FRAMES.items():
        if key in normalized:
            tag.add(frame(encoding=Encoding.UTF8, text=[normalized[key]]))
    if "comment" in normalized:
        tag.add(COMM(encoding=Encoding.UTF8, lang="eng", desc="", text=[normalized["comment"]]))
    if "keywords" in normalized:
        tag.add(TXXX(encoding=Encoding.UTF8, desc=KEYWORDS_DESC, text=[", ".join(normalized["keywords"])]))
    ids = [f"chp{index}" for index in range(len(chapters))]
    flags = CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED
    tag.add(CTOC(element_id=TOC_ID, flags=flags, child_element_ids=ids, sub_frames=[]))
    for element_id, chapter in zip(ids, chapters):
        tag.add(
            CHAP(
                element_id=element_id,
                start_time=_ms(chapter.start),
                end_time=_ms(chapter.end),
                start_offset=0xFFFFFFFF,  # "no byte offset": players seek by time
                end_offset=0xFFFFFFFF,
                sub_frames=[TIT2(encoding=Encoding.UTF8, text=[one_line(chapter.title)])],
            )
        )
    return tag


def _syncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def id3_tag_bytes(tag: ID3) -> bytes:
    """The ID3v2.4 tag as bytes, no padding, with its CHAP frames in the order its CTOC lists them.

    mutagen writes CHAP frames ordered by size (quodlibet/mutagen#506), and readers that ignore
    the CTOC, ffmpeg among them, list chapters in file order; so the frames are reordered here.
    """
    buffer = io.BytesIO()
    tag.save(buffer, v1=0, v2_version=4, padding=lambda info: 0)
    data = buffer.getvalue()
    if data[:4] != b"ID3\x04" or data[5] != 0:  # flags: no unsynchronisation, extended header or footer
        raise ContractViolation(f"mutagen wrote an unexpected ID3 header {data[:10]!r}")
    frames: list[bytes] = []
    position = 10
    while position < len(data):
        end = position + 10 + _syncsafe(data[position + 4 : position + 8])
        frames.append(data[position:end])
        position = end
    order = {element_id: rank for toc in tag.getall("CTOC") for rank, element_id in enumerate(toc.child_element_ids)}
    chaps = iter(sorted((f for f in frames if f[:4] == b"CHAP"), key=lambda f: order.get(_element_id(f), len(order))))
    return data[:10] + b"".join(next(chaps) if frame[:4] == b"CHAP" else frame for frame in frames)


def _element_id(frame: bytes) -> str:
    return frame[10 : frame.index(b"\0", 10)].decode("latin-1")


def tagged_mp3(
    wav_path: Path,
    out_path: Path,
    chapters: Sequence[ChapterLike],
    tags: dict,
    *,
    bitrate: str = DistributionSettings.mp3_bitrate,
) -> Path:
    """Encode `wav_path` to a CBR MP3 at `out_path` with an ID3v2.4 tag (tags, chapters); return out_path.

    ffmpeg writes no ID3 tag (`-id3v2_version 0`) and no input metadata; with bitexact flags its
    Xing/LAME "Info" frame (kept: it carries the encoder delay and padding for gapless playback
    and the exact length) holds no version string, so the same input gives the same bytes. The
    tag (`id3_tag_bytes`) goes in front of that audio. `out_path` appears only once complete.
    """
    if not re.fullmatch(r"\d{1,3}k", bitrate):
        raise ValueError(f"bitrate must look like '128k', got {bitrate!r}")
    tag = id3_tag_bytes(id3_tag(chapters, tags))  # refuse bad chapters or tags before encoding anything
    out_path = Path(out_path)
    audio = out_path.with_name(out_path.name + ".audio.partial")
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        run_ffmpeg(
            [
                "-y", "-loglevel", "error", *SAFE_INPUT, "-i", file_url(wav_path),
                "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
                "-c:a", "libmp3lame", "-b:a", bitrate, "-fflags", "+bitexact", "-flags", "+bitexact",
                "-id3v2_version", "0", "-write_id3v1", "0", "-write_xing", "1", "-f", "mp3", file_url(audio),
            ],
            task="mp3_encode",
        )  # fmt: skip
        with partial.open("wb") as out, audio.open("rb") as encoded:
            out.write(tag)
            shutil.copyfileobj(encoded, out)
        os.replace(partial, out_path)
    finally:
        audio.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return out_path


def _read_id3(path: Path) -> ID3:
    try:
        return ID3(path)
    except ID3NoHeaderError as exc:
        raise ContractViolation(f"{Path(path).name}: no ID3v2 tag") from exc


def read_mp3_chapters(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, title) of the chapters in the MP3's ID3 tag, in the top-level CTOC's order.

    Without a CTOC, the CHAP frames sorted by start time. A CTOC child with no CHAP frame is a
    ContractViolation.
    """
    tag = _read_id3(path)
    chaps = {frame.element_id: frame for frame in tag.getall("CHAP")}
    tocs = [frame for frame in tag.getall("CTOC") if frame.flags & CTOCFlags.TOP_LEVEL] or tag.getall("CTOC")
    if tocs:
        missing = [i for i in tocs[0].child_element_ids if i not in chaps]
        if missing:
            raise ContractViolation(f"{Path(path).name}: CTOC names chapters with no CHAP frame: {missing}")
        ordered = [chaps[i] for i in tocs[0].child_element_ids]
    else:
        ordered = sorted(chaps.values(), key=lambda frame: frame.start_time)
    return [(frame.start_time / 1000, frame.end_time / 1000, _chapter_title(frame)) for frame in ordered]


def _chapter_title(frame: CHAP) -> str:
    titles = frame.sub_frames.getall("TIT2")
    return str(titles[0].text[0]) if titles and titles[0].text else ""


def read_mp3_tags(path: Path) -> dict:
    """The episode tags in the MP3's ID3 tag, keyed and shaped as `episode_tags` gives them."""
    tag = _read_id3(path)
    out: dict = {}
    for key, frame in _TEXT_FRAMES.items():
        frames = tag.getall(frame.__name__)
        if frames and frames[0].text:
            out[key] = str(frames[0].text[0])
    if "date" in out:
        out["date"] = out["date"].replace(" ", "T")  # mutagen's text form has a space; ID3v2.4 a 'T'
    comments = [frame for frame in tag.getall("COMM") if frame.desc == ""]
    if comments and comments[0].text:
        out["comment"] = str(comments[0].text[0])
    keywords = [frame for frame in tag.getall("TXXX") if frame.desc == KEYWORDS_DESC]
    if keywords and keywords[0].text:
        out["keywords"] = [k.strip() for k in str(keywords[0].text[0]).split(",") if k.strip()]
    return out


def validate_mp3(path: Path, chapters: Sequence[ChapterLike], tags: dict) -> None:
    """Raise ContractViolation unless the MP3's ID3 chapters and tags read back as intended.

    Chapters: same count and order, titles equal (one-lined), times within 1 ms; the top-level CTOC
    is ordered. Tags: exactly `episode_tags(tags)`.
    """
    name = Path(path).name
    tag = _read_id3(path)
    tocs = [frame for frame in tag.getall("CTOC") if frame.flags & CTOCFlags.TOP_LEVEL]
    if len(tocs) != 1 or not tocs[0].flags & CTOCFlags.ORDERED:
        raise ContractViolation(f"{name}: expected one ordered top-level CTOC, found {len(tocs)} top-level")
    found = read_mp3_chapters(path)
    if len(found) != len(chapters):
        raise ContractViolation(f"{name}: {len(found)} chapters in the tag, {len(chapters)} intended")
    for number, ((start, end, title), chapter) in enumerate(zip(found, chapters), 1):
        if title != one_line(chapter.title):
            raise ContractViolation(f"{name}: chapter {number} title {title!r}, intended {one_line(chapter.title)!r}")
        if abs(start - chapter.start) > TIME_TOLERANCE_S or abs(end - chapter.end) > TIME_TOLERANCE_S:
            raise ContractViolation(
                f"{name}: chapter {number} spans {start}-{end} s, intended {chapter.start}-{chapter.end} s"
            )
    intended = episode_tags(tags)
    read = read_mp3_tags(path)
    if read != intended:
        differing = sorted(k for k in intended.keys() | read.keys() if intended.get(k) != read.get(k))
        raise ContractViolation(f"{name}: tags {differing} read back differently: {read} vs intended {intended}")
