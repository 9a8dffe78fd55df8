"""Readable episode ids: a slug of the first upload's name plus a hash prefix, while identity stays
the content hash, ids never change once given, lakes made before slugs keep their ids, and two
claims at once (local folder or S3) agree."""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pytest

from media_assets.lib.core import contracts
from media_assets.lib.core.identity import (
    EPISODE_ID_PATTERN,
    KEY_HEX_CHARS,
    SLUG_MAX_CHARS,
    episode_id_candidates,
    legacy_episode_id,
    sha256_file,
    slug,
)
from media_assets.lib.core.lake import S3Store, document_key, episode_claim_key, raw_key
from media_assets.lib.media.ingest import REGISTRATION, episode_id_of, ingest, known_episode_id
from media_assets.lib.media.media_contract import MediaLimits


def run_ingest(paths, lake):
    return ingest(paths, lake, MediaLimits(), lambda ids: None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Episode 42 (Final).MP3", "episode-42-final"),
        ("/inbox/My Show/ep 1.wav", "ep-1"),
        ("s3://uploads/incoming/Ünïcode café — talk.m4a", "unicode-cafe-talk"),
        ("../../etc/passwd", "passwd"),
        ("--help", "help"),
        ("日本語.wav", "episode"),
        ("archive.tar.gz", "archive-tar"),
        ("a,b;c'd\"e$(f).wav", "a-b-c-d-e-f"),
        ("x" * 90 + ".wav", "x" * SLUG_MAX_CHARS),
        (
            "interview with the chief engineer of the lunar gateway programme.wav",
            "interview-with-the-chief-engineer-of-the",
        ),
    ],
)
def test_slug_is_readable_safe_and_bounded(name, expected) -> None:
    assert slug(name) == expected
    assert re.fullmatch(EPISODE_ID_PATTERN, slug(name)) and len(slug(name)) <= SLUG_MAX_CHARS


def test_every_key_form_fits_the_schema_and_the_table_check() -> None:
    """One pattern for ids: the JSON Schema and the pandera check hold the same one, and the
    longest id (a full slug and a whole hash) fits the schema's length limit."""
    common = json.loads((contracts.SCHEMA_DIR / "common.schema.json").read_text())["$defs"]["episode_id"]
    assert common["pattern"] == EPISODE_ID_PATTERN
    sha = "ab" * 32
    for key in (*episode_id_candidates(sha, "y" * 99), legacy_episode_id(sha)):
        assert re.fullmatch(EPISODE_ID_PATTERN, key) and len(key) <= common["maxLength"], key


def test_same_bytes_under_another_name_are_a_duplicate_of_the_first_id(tmp_path, media, lake) -> None:
    first = shutil.copy(media["tone"], tmp_path / "Episode 42 - Launch.wav")
    renamed = shutil.copy(media["tone"], tmp_path / "something else entirely.wav")
    sha = sha256_file(Path(first))
    (registered,) = run_ingest([Path(first)], lake)
    assert registered.episode_id == f"episode-42-launch-{sha[:KEY_HEX_CHARS]}"
    (again,) = run_ingest([Path(renamed)], lake)
    assert (again.status, again.episode_id) == ("duplicate", registered.episode_id)
    assert known_episode_id(lake, sha) == registered.episode_id


def test_a_lake_made_before_slugs_keeps_its_ids(tmp_path, media, lake) -> None:
    """An episode registered under the old bare-hex id stays there: the same bytes re-uploaded
    under any name are its duplicate, and no second episode appears."""
    path = Path(shutil.copy(media["tone"], tmp_path / "old name.wav"))
    sha = sha256_file(path)
    legacy = legacy_episode_id(sha)
    registration = {
        "episode_id": legacy,
        "sha256": sha,
        "size_bytes": path.stat().st_size,
        "source_uri": str(path),
        "original_name": path.name,
        "sidecar_verified": False,
    }
    lake.put_file(raw_key(legacy), path)
    lake.put_bytes(document_key(REGISTRATION, legacy), contracts.dump_document(REGISTRATION, registration))
    (outcome,) = run_ingest([Path(shutil.copy(path, tmp_path / "new name.wav"))], lake)
    assert (outcome.status, outcome.episode_id) == ("duplicate", legacy)
    assert lake.list_keys(REGISTRATION) == [document_key(REGISTRATION, legacy)]


def test_an_id_held_by_other_bytes_is_never_shared(tmp_path, media, lake) -> None:
    """Another content whose slug and 48-bit prefix are equal (forged here: the claim of the
    preferred id names other bytes) gets the slug with its whole hash, and the other episode's
    files are untouched."""
    path = Path(shutil.copy(media["tone"], tmp_path / "show.wav"))
    sha = sha256_file(path)
    preferred, unique = episode_id_candidates(sha, path.name)
    squatter = {"sha256": "f" * 64, "episode_id": preferred}
    lake.put_bytes(episode_claim_key(preferred), contracts.dump_document("identity", squatter))
    (outcome,) = run_ingest([path], lake)
    assert (outcome.status, outcome.episode_id) == ("registered", unique)
    assert not lake.exists(raw_key(preferred))


def test_concurrent_claims_of_the_same_bytes_agree(lake) -> None:
    """Eight uploads of the same bytes under eight names at once: one id wins and all get it."""
    sha = "0123456789abcdef" * 4
    ids: list[str] = []
    start = threading.Barrier(8)

    def claim(n: int) -> None:
        start.wait()
        ids.append(episode_id_of(lake, sha, f"upload {n}.wav"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert re.fullmatch(rf"upload-\d-{sha[:KEY_HEX_CHARS]}", ids[0])


def test_s3_create_only_writes(s3, s3_endpoint) -> None:
    """On S3 a claim is a conditional PUT (If-None-Match: *): the first write wins, a second one
    is refused without replacing it."""
    s3.create_bucket(Bucket="claims")
    store = S3Store("claims", "lake", s3)
    assert store.put_new("identity/x.json", b"first") is True
    assert store.put_new("identity/x.json", b"second") is False
    assert store.get_bytes("identity/x.json") == b"first"
