"""Distribution files from chapters, each checked by a reader other than the writer: the JSON Schema
of the Podcasting 2.0 chapters format, a strict WebVTT parser, mutagen's ID3 frames and ffprobe."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from mutagen.id3 import ID3, CTOCFlags

from media_assets.lib.core import contracts
from media_assets.lib.core.errors import ContractViolation
from media_assets.lib.distribution import formats as distribution


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


# Titles get shorter chapter after chapter: mutagen alone would write these CHAP frames in reverse.
CHAPTERS = [
    Chapter(0.0, 3.25, "Intro & <welcome> to the show"),
    Chapter(3.25, 7.5, "Main   topic\non two lines"),
    Chapter(7.5, 10.0, "Q&A: Ünïcödé"),
    Chapter(10.0, 12.0, "Outro"),
]
WRITTEN_TITLES = ["Intro & <welcome> to the show", "Main topic on two lines", "Q&A: Ünïcödé", "Outro"]
TAGS = {
    "title": "Episode 7 - Making Progress",
    "artist": "Jane Doe",
    "album": "Jane's Podcast",
    "genre": "Podcast",
    "date": "2026-01-02T03:04:05Z",
    "comment": "Show notes\nsecond line",
    "keywords": ["hearing aids", "namespace", " progress "],
}


READ_BACK_TAGS = {
    "title": "Episode 7 - Making Progress",
    "artist": "Jane Doe",
    "album": "Jane's Podcast",
    "genre": "Podcast",
    "date": "2026-01-02T03:04:05",
    "comment": "Show notes\nsecond line",
    "keywords": ["hearing aids", "namespace", "progress"],
}  # the tags as mutagen reads them back


# --- Podcasting 2.0 JSON chapters ---------------------------------------------------------------


def test_podcasting_chapters_document() -> None:
    chapters = [Chapter(0.0, 94.12345, "Intro"), Chapter(94.12345, 168.0, "Donation\nSegment")]
    document = distribution.podcasting_chapters(
        chapters, title="Episode 7", podcast_name="Jane's Podcast", author="Jane Doe"
    )
    assert document == {
        "version": "1.2.0",
        "title": "Episode 7",
        "podcastName": "Jane's Podcast",
        "author": "Jane Doe",
        "chapters": [
            {"startTime": 0.0, "endTime": 94.123, "title": "Intro"},
            {"startTime": 94.123, "endTime": 168.0, "title": "Donation Segment"},
        ],
    }
    bare = distribution.podcasting_chapters(chapters)
    assert set(bare) == {"version", "chapters"}
    assert isinstance(bare["chapters"][0]["startTime"], float)
    # the canonical serialization the lake uses accepts it, since the schema sits in schemas/
    assert json.loads(contracts.dump_document(distribution.PODCASTING_CHAPTERS_SCHEMA, document)) == document


def test_schema_accepts_what_the_spec_allows() -> None:
    """Shaped like the spec's examples: only startTime is required in a chapter; img, url, toc,
    location (name + geo), endTime and unknown extras are allowed."""
    document = {
        "version": "1.2.0",
        "author": "John Doe",
        "title": "Episode 7",
        "podcastName": "John's Podcast",
        "description": "About things",
        "fileName": "episode7.mp3",
        "waypoints": True,
        "chapters": [
            {"startTime": 0, "title": "Intro"},
            {"startTime": 168, "endTime": 260.5, "title": "Hearing Aids", "img": "https://example.com/a.jpg"},
            {"startTime": 410, "title": "Namespace", "url": "https://example.com", "value": "<podcast:value/>"},
            {
                "startTime": 4826,
                "img": "https://example.com/paris.jpg",
                "toc": False,
                "location": {"name": "Eiffel Tower, Paris", "geo": "geo:48.858093,2.294694", "osm": "W5013364"},
            },
        ],
    }
    assert distribution.validate_podcasting_chapters(document) is document
    assert distribution.validate_podcasting_chapters({"version": "1.2.0", "chapters": []})


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d["chapters"][1].pop("startTime"), "chapters/1': 'startTime' is a required property"),
        (lambda d: d.update(version=1.2), "version': 1.2 is not of type 'string'"),
        (lambda d: d.pop("version"), "(document)"),
        (lambda d: d.pop("chapters"), "(document)"),
        (lambda d: d["chapters"][0].update(startTime=-1), "chapters/0/startTime"),
        (lambda d: d["chapters"][0].update(startTime="0"), "chapters/0/startTime"),
        (lambda d: d["chapters"][0].update(title=3), "chapters/0/title"),
        (lambda d: d["chapters"][0].update(toc="false"), "chapters/0/toc"),
        (lambda d: d["chapters"][0].update(location={"name": "Paris"}), "chapters/0/location"),
        (lambda d: d["chapters"][0].update(location={"name": "Paris", "geo": "48.8,2.2"}), "chapters/0/location/geo"),
        (lambda d: d.update(waypoints="yes"), "waypoints"),
        (lambda d: d["chapters"].reverse(), "chapters/1/startTime"),
        (lambda d: d["chapters"][0].update(endTime=0.0, startTime=1.0), "chapters/0/endTime"),
    ],
)
def test_schema_rejects_invalid_documents(change, field: str) -> None:
    document = distribution.podcasting_chapters(CHAPTERS[:2])
    change(document)
    with pytest.raises(ContractViolation, match=re.escape(f"field '{field}")):
        distribution.validate_podcasting_chapters(document)


@pytest.mark.parametrize(
    "chapters, reason",
    [
        ([], "no chapters"),
        ([Chapter(0.0, 2.0, "a"), Chapter(1.5, 3.0, "b")], "before the previous one ends"),
        ([Chapter(0.0, 0.0, "a")], "not a span"),
        ([Chapter(0.0, 2.0, " \n ")], "blank title"),
    ],
)
def test_bad_chapters_are_refused(chapters, reason: str, tmp_path: Path) -> None:
    for write in (distribution.podcasting_chapters, distribution.webvtt_chapters):
        with pytest.raises(ContractViolation, match=reason):
            write(chapters)
    with pytest.raises(ContractViolation, match=reason):  # before any encoding
        distribution.tagged_mp3(tmp_path / "missing.wav", tmp_path / "out.mp3", chapters, TAGS)
    assert list(tmp_path.iterdir()) == []


# --- WebVTT -------------------------------------------------------------------------------------


def test_webvtt_chapters_text_and_round_trip() -> None:
    text = distribution.webvtt_chapters(CHAPTERS)
    assert text.startswith("WEBVTT\n\nchapter-1\n00:00:00.000 --> 00:00:03.250\n")
    assert "\nIntro &amp; &lt;welcome&gt; to the show\n" in text
    assert "\nchapter-3\n00:00:07.500 --> 00:00:10.000\nQ&amp;A: Ünïcödé\n" in text
    assert [line for line in text.splitlines() if line.startswith("chapter-")] == [f"chapter-{n}" for n in (1, 2, 3, 4)]
    assert distribution.parse_webvtt_cues(text) == [(c.start, c.end, t) for c, t in zip(CHAPTERS, WRITTEN_TITLES)]


def test_webvtt_timestamps_past_an_hour() -> None:
    chapters = [Chapter(0.0, 3725.5, "One"), Chapter(3725.5, 360000.25, "Two")]
    text = distribution.webvtt_chapters(chapters)
    assert "00:00:00.000 --> 01:02:05.500" in text
    assert "01:02:05.500 --> 100:00:00.250" in text
    assert distribution.parse_webvtt_cues(text) == [(0.0, 3725.5, "One"), (3725.5, 360000.25, "Two")]


def test_webvtt_parser_accepts_valid_syntax() -> None:
    text = (
        "\ufeffWEBVTT - chapters\r\nKind: chapters\r\n\r\n"
        "STYLE\r\n::cue { color: red }\r\n\r\n"
        "NOTE written by hand\r\n\r\n"
        "01:02.500 --> 01:03.000 align:start\r\nNo id, &#38; &#x3C;tag&gt; &nbsp;x\r\n\r\n\r\n"
        "NOTE\nanother comment\n\n"
        "id\n00:01:03.000 --> 00:01:04.000\nline one\nline two\n"
    )
    assert distribution.parse_webvtt_cues(text) == [
        (62.5, 63.0, "No id, & <tag> \u00a0x"),
        (63.0, 64.0, "line one\nline two"),
    ]
    assert distribution.parse_webvtt_cues("WEBVTT") == []


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "first line"),
        ("WEBVTTX\n\n", "first line"),
        ("webvtt\n\n", "first line"),
        ("WEBVTT\n00:00.000 --> 00:01.000\nx\n", "inside the header"),
        ("WEBVTT\n\n00:01.000 --> 00:01.000\nx\n", "at or before its start"),
        ("WEBVTT\n\n00:02.000 --> 00:01.000\nx\n", "at or before its start"),
        ("WEBVTT\n\n00:60.000 --> 01:01.000\nx\n", "bad cue timing"),
        ("WEBVTT\n\n0:00:00.000 --> 00:01.000\nx\n", "bad cue timing"),
        ("WEBVTT\n\n00:00.00 --> 00:01.000\nx\n", "bad cue timing"),
        ("WEBVTT\n\n00:00.000-->00:01.000\nx\n", "bad cue timing"),
        ("WEBVTT\n\n00:00.000 --> 00:01.000\nQ&A\n", "'&'"),
        ("WEBVTT\n\n00:00.000 --> 00:01.000\n<b>bold</b>\n", "a tag"),
        ("WEBVTT\n\n00:00.000 --> 00:01.000\n&bogus;\n", "unknown character reference"),
        ("WEBVTT\n\n00:05.000 --> 00:06.000\na\n\n00:01.000 --> 00:02.000\nb\n", "before the previous cue"),
        ("WEBVTT\n\n00:00.000 --> 00:01.000\na\n00:01.000 --> 00:02.000\nb\n", "in a cue payload"),
        ("WEBVTT\n\njust text\n", "neither a cue nor a comment"),
        ("WEBVTT\n\n00:00.000 --> 00:01.000\na\n\nSTYLE\n::cue {}\n", "neither a cue nor a comment"),
        ("WEBVTT\n\nNOTE a --> b\n", "in a NOTE"),
    ],
)
def test_webvtt_parser_rejects_malformed_files(text: str, reason: str) -> None:
    with pytest.raises(ContractViolation, match=reason):
        distribution.parse_webvtt_cues(text)


# --- MP3 with ID3v2.4 chapters -------------------------------------------------------------------


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("distribution") / "episode with spaces.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=48000:duration=12", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def mp3(wav: Path) -> Path:
    return distribution.tagged_mp3(wav, wav.with_name("episode.mp3"), CHAPTERS, TAGS)


def test_mp3_id3_frames_as_mutagen_reads_them(mp3: Path) -> None:
    tag = ID3(mp3)
    assert tag.version == (2, 4, 0)
    [toc] = tag.getall("CTOC")
    assert toc.element_id == "toc"
    assert toc.flags == CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED
    assert toc.child_element_ids == ["chp0", "chp1", "chp2", "chp3"]
    chaps = {frame.element_id: frame for frame in tag.getall("CHAP")}
    assert sorted(chaps) == toc.child_element_ids
    for element_id, chapter, title in zip(toc.child_element_ids, CHAPTERS, WRITTEN_TITLES):
        frame = chaps[element_id]
        assert (frame.start_time, frame.end_time) == (round(chapter.start * 1000), round(chapter.end * 1000))
        assert [sub.text for sub in frame.sub_frames.getall("TIT2")] == [[title]]
    assert tag["TIT2"].text == ["Episode 7 - Making Progress"]
    assert tag["TPE1"].text == ["Jane Doe"]
    assert tag["TALB"].text == ["Jane's Podcast"]
    assert tag["TCON"].text == ["Podcast"]
    assert str(tag["TDRC"].text[0]) == "2026-01-02 03:04:05"
    assert tag.getall("COMM")[0].text == ["Show notes\nsecond line"]
    assert tag["TXXX:keywords"].text == ["hearing aids, namespace, progress"]

    assert distribution.read_mp3_chapters(mp3) == [(c.start, c.end, t) for c, t in zip(CHAPTERS, WRITTEN_TITLES)]
    assert distribution.read_mp3_tags(mp3) == READ_BACK_TAGS
    distribution.validate_mp3(mp3, CHAPTERS, TAGS)


def test_mp3_as_ffprobe_reads_it(mp3: Path) -> None:
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-show_streams", "-of", "json", str(mp3)],
            check=True,
            capture_output=True,
        ).stdout
    )
    # ffmpeg lists CHAP frames in file order, ignoring the CTOC: the file must hold them in order
    assert [(c["start"], c["end"], c["time_base"], c["tags"]["title"]) for c in probe["chapters"]] == [
        (round(c.start * 1000), round(c.end * 1000), "1/1000", t) for c, t in zip(CHAPTERS, WRITTEN_TITLES)
    ]
    [stream] = probe["streams"]
    assert (stream["codec_name"], stream["sample_rate"], stream["bit_rate"]) == ("mp3", "48000", "128000")
    assert abs(float(probe["format"]["duration"]) - 12.0) < 0.1
    assert probe["format"]["tags"] == {**READ_BACK_TAGS, "keywords": "hearing aids, namespace, progress"}


def test_mp3_is_byte_deterministic(wav: Path, mp3: Path, tmp_path: Path) -> None:
    again = distribution.tagged_mp3(wav, tmp_path / "other name.mp3", CHAPTERS, TAGS)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(mp3.read_bytes()).digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other name.mp3"]  # no partial files left


@pytest.mark.parametrize(
    "chapters, tags, reason",
    [
        ([*CHAPTERS[:3], replace(CHAPTERS[3], title="Goodbye")], TAGS, "chapter 4 title"),
        ([replace(CHAPTERS[0], end=3.252), replace(CHAPTERS[1], start=3.252), *CHAPTERS[2:]], TAGS, "chapter 1 spans"),
        (CHAPTERS[:3], TAGS, "4 chapters in the tag, 3 intended"),
        (CHAPTERS, {**TAGS, "artist": "Someone Else"}, r"tags \['artist'\]"),
        (CHAPTERS, {**TAGS, "keywords": ["namespace"]}, r"tags \['keywords'\]"),
        (CHAPTERS, {k: v for k, v in TAGS.items() if k != "genre"}, r"tags \['genre'\]"),
    ],
)
def test_validate_mp3_rejects_a_mismatch(mp3: Path, chapters, tags: dict, reason: str) -> None:
    with pytest.raises(ContractViolation, match=reason):
        distribution.validate_mp3(mp3, chapters, tags)


def test_validate_mp3_rejects_an_untagged_file(mp3: Path, tmp_path: Path) -> None:
    untagged = tmp_path / "untagged.mp3"
    untagged.write_bytes(mp3.read_bytes())
    ID3(untagged).delete(untagged)
    with pytest.raises(ContractViolation, match="no ID3v2 tag"):
        distribution.validate_mp3(untagged, CHAPTERS, TAGS)


def test_tags_are_normalized_or_refused() -> None:
    assert distribution.episode_tags({"title": None, "artist": " ", "date": "2026", "keywords": None}) == {
        "date": "2026"
    }
    assert distribution.episode_tags({"date": "2026-01-02 03:04"})["date"] == "2026-01-02T03:04"
    assert distribution.episode_tags({"title": "T", "date": "January 2026"}) == {"title": "T"}  # free-form: dropped
    with pytest.raises(ContractViolation, match="commas"):
        distribution.episode_tags({"keywords": ["a, b"]})
