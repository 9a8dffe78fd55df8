"""Ingest: every input ends registered, duplicate or rejected with a specific reason and a
dead-letter record, and one bad file never stops the batch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from media_assets.demo import samples
from media_assets.lib.core import dead_letters
from media_assets.lib.core.identity import sha256_file
from media_assets.lib.core.lake import document_key
from media_assets.lib.media.ingest import ingest, known_episode_id
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.stages import BY_NAME

DEFAULT_LIMITS = MediaLimits()


def run_ingest(paths, lake, limits: MediaLimits = DEFAULT_LIMITS):
    registered: list[str] = []
    outcomes = ingest(paths, lake, limits, registered.extend)
    return outcomes, registered


@pytest.fixture
def bad_batch(tmp_path: Path, media: dict[str, Path]) -> tuple[Path, dict[str, str]]:
    """A folder holding every kind of bad input next to two good files; maps name -> reason."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(media["tone"], inbox / "good_tone.wav")
    shutil.copy(media["mp3"], inbox / "good_tagged.mp3")
    samples.empty_file(inbox / "empty.wav")
    samples.random_bytes(inbox / "noise_bytes.wav")
    samples.truncated_mp3(inbox / "truncated.mp3", media["mp3"])
    samples.text_as_media(inbox / "notes.mp4")
    samples.video_without_audio(inbox / "silent_film.mp4")
    samples.tone(inbox / "blip.wav", seconds=0.5)
    samples.noise(inbox / "checked.wav", seconds=3.0, lufs=-20.0)
    samples.wrong_sidecar(inbox / "checked.wav")
    samples.symlink_outside(inbox / "escape.wav", shutil.copy(media["speech"], outside / "secret.wav"))
    expected = {
        "empty.wav": "empty_file",
        "noise_bytes.wav": "unreadable_media",
        "truncated.mp3": "unreadable_media",
        "notes.mp4": "unreadable_media",
        "silent_film.mp4": "no_audio_stream",
        "blip.wav": "too_short",
        "checked.wav": "checksum_mismatch",
        "escape.wav": "symlink_outside_root",
    }
    return inbox, expected


def test_bad_inputs_are_rejected_with_reasons_and_the_batch_goes_on(bad_batch, lake) -> None:
    inbox, expected = bad_batch
    outcomes, registered = run_ingest([inbox], lake)
    by_name = {Path(o.path).name: o for o in outcomes}

    assert len(outcomes) == len(expected) + 2
    assert {by_name["good_tone.wav"].status, by_name["good_tagged.mp3"].status} == {"registered"}
    for name, reason in expected.items():
        assert by_name[name].status == "rejected", name
        assert by_name[name].reason == reason, (name, by_name[name].message)
        assert by_name[name].episode_id is None
    assert sorted(registered) == sorted(o.episode_id for o in outcomes if o.status == "registered")

    records = {Path(r["path"]).name: r for r in dead_letters.list_records(lake)}
    assert set(records) == set(expected)
    for name, record in records.items():
        assert record["stage"] == "ingest"
        assert record["reason"] == expected[name]
        assert record["error_type"] == "RejectedMedia"
        assert record["attempts"] == 1
        assert "Traceback" in record["traceback"]
        assert record["payload"]["path"].endswith(name)
        assert record["timestamp"].startswith("20")


def test_symlink_target_outside_is_never_read_into_the_lake(bad_batch, lake) -> None:
    inbox, _ = bad_batch
    secret_sha = sha256_file((inbox / "escape.wav").resolve())
    run_ingest([inbox], lake)
    assert known_episode_id(lake, secret_sha) is None


def test_truncated_but_decodable_mp3_is_accepted_with_its_real_duration(tmp_path, media, lake, limits) -> None:

    long_mp3 = samples.mp3_with_id3(tmp_path / "long.mp3", seconds=8.0)
    half = samples.short_but_decodable_mp3(tmp_path / "half.mp3", long_mp3)
    (outcome,), _ = run_ingest([half], lake)
    assert outcome.status == "registered"
    document = BY_NAME["raw_media"].run(lake, outcome.episode_id, MediaSettings(limits=limits)).document
    assert document["probe"]["duration_s"] == pytest.approx(8.0, abs=0.2)  # what the header claims
    assert document["decoded_duration_s"] == pytest.approx(4.0, abs=0.3)  # what really decodes


def test_duplicates_within_and_across_batches(tmp_path, media, lake) -> None:
    first = shutil.copy(media["tone"], tmp_path / "a.wav")
    second = shutil.copy(media["tone"], tmp_path / "copy of a.wav")
    outcomes, registered = run_ingest([first, second], lake)
    assert [o.status for o in outcomes] == ["registered", "duplicate"]
    assert outcomes[0].episode_id == outcomes[1].episode_id == known_episode_id(lake, sha256_file(first))
    assert outcomes[0].episode_id == f"a-{sha256_file(first)[:12]}"  # the first upload's name
    again, _ = run_ingest([first], lake)
    assert again[0].status == "duplicate"
    assert registered == [outcomes[0].episode_id]


@pytest.mark.parametrize(
    "name",
    [
        "my episode.wav",
        "épisode été 日本.wav",
        "a,b,c.wav",
        'it\'s "quoted".wav',
        "-rf leading dash.wav",
        "two..dots..wav",
        "..hidden-ish.wav",
    ],
)
def test_awkward_names_are_accepted_and_kept_as_data(tmp_path, media, lake, name) -> None:
    path = shutil.copy(media["speech"], tmp_path / name)
    (outcome,), _ = run_ingest([Path(path)], lake)
    assert outcome.status == "registered", outcome
    registration = lake.get_bytes(document_key("registration", outcome.episode_id)).decode()
    assert name.replace('"', '\\"') in registration
    assert all(name not in key for key in lake.list_keys("raw"))


def test_sidecar_that_matches_is_verified(tmp_path, media, lake) -> None:
    path = Path(shutil.copy(media["tone"], tmp_path / "ok.wav"))
    samples.sidecar(path)
    (outcome,), _ = run_ingest([tmp_path], lake)
    assert outcome.status == "registered"
    assert b'"sidecar_verified": true' in lake.get_bytes(document_key("registration", outcome.episode_id))


def test_limits_are_configurable(tmp_path, media, lake) -> None:
    (outcome,), _ = run_ingest([media["tone"]], lake, MediaLimits(min_seconds=1.0, max_seconds=2.0))
    assert (outcome.status, outcome.reason) == ("rejected", "too_long")
    (outcome,), _ = run_ingest([media["tone"]], lake, MediaLimits(max_bytes=1000))
    assert (outcome.status, outcome.reason) == ("rejected", "too_large")


def test_every_input_is_accounted_for(bad_batch, lake) -> None:
    inbox, _ = bad_batch
    shutil.copy(inbox / "good_tone.wav", inbox / "dup_tone.wav")
    inputs = [p for p in inbox.iterdir() if not p.name.endswith(".sha256")]
    outcomes, _ = run_ingest([inbox], lake)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("registered", "duplicate", "rejected")}
    assert counts == {"registered": 2, "duplicate": 1, "rejected": 8}
    assert sum(counts.values()) == len(inputs)
