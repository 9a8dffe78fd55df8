"""The lake on a real S3-compatible server: moto's server mode, in-process, on 127.0.0.1.

No `mock_aws`: every call here goes over HTTP to a moto server bound to loopback, through the
same clients production uses (boto3 via dagster-aws's S3Resource for the store, s3fs for DuckDB).
Credentials are fake and come from the environment, as they would in a deployment.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from media_assets.demo import samples
from media_assets.lib.core import catalog
from media_assets.lib.core.lake import S3Store, document_key, media_key, raw_key, table_key
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.loudness import LoudnessTarget
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.stages import BY_NAME
from media_assets.resources.lake import LakeResource
from media_assets_tests.conftest import REGION

PREFIX = "lake"
ID3_TITLE = "S3 Lake: Episode One"


def _new_bucket(s3) -> str:
    name = f"media-lake-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, unversioned bucket for one test."""
    return _new_bucket(s3)


def _resource(bucket: str, endpoint: str) -> LakeResource:
    return LakeResource(root=f"s3://{bucket}/{PREFIX}", s3_endpoint_url=endpoint, s3_region=REGION)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _all_versions(s3, bucket: str) -> list[tuple[str, str]]:
    """Every (key, version id) in the bucket, delete markers included."""
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        found += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        found += [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])]
    return sorted(found)


def _all_keys(s3, bucket: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return sorted(keys)


# --- S3Store -----------------------------------------------------------------


def test_store_enables_versioning_and_round_trips_bytes(s3, s3_endpoint, bucket):
    """`LakeResource(root="s3://...").store()` returns an S3Store on the bucket and prefix,
    switches object versioning on, and bytes written come back identical, stored under the
    prefix with their SHA-256 in the object metadata."""
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None

    store = _resource(bucket, s3_endpoint).store()

    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.root_uri) == (bucket, PREFIX, f"s3://{bucket}/{PREFIX}")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    data = b"episode bytes \x00\xff" * 100
    key = "docs/episode_id=e1/doc.json"
    version_id = store.put_bytes(key, data).version_id

    assert store.get_bytes(key) == data
    assert store.exists(key) and not store.exists("docs/episode_id=e1/other.json")
    assert store.current_sha256(key) == _sha256(data)
    assert store.uri(key) == f"s3://{bucket}/{PREFIX}/{key}"
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{key}")
    assert head["VersionId"] == version_id
    assert head["Metadata"] == {"sha256": _sha256(data)}
    assert head["ContentLength"] == len(data)


def test_rewrites_are_versioned_and_identical_bytes_are_a_no_op(s3, s3_endpoint, bucket):
    """Writing the same bytes again adds no S3 version and returns the current version id;
    writing other bytes adds exactly one version. `versions()` lists both, exactly one of them
    current (the new bytes), and `get_version` still returns the old bytes."""
    store = _resource(bucket, s3_endpoint).store()
    key = "loudness/episode_id=e1/loudness.parquet"
    old, new = b"first version", b"second version, longer"

    first_id = store.put_bytes(key, old).version_id
    assert store.put_bytes(key, old).version_id == first_id
    assert _all_versions(s3, bucket) == [(f"{PREFIX}/{key}", first_id)]

    second_id = store.put_bytes(key, new).version_id
    assert second_id != first_id
    assert len(_all_versions(s3, bucket)) == 2
    assert store.get_bytes(key) == new

    versions = store.versions(key)
    assert [v.version_id for v in versions] == [first_id, second_id]  # oldest first, as LocalStore
    assert [v.is_current for v in versions] == [False, True]
    assert {v.version_id: v.sha256 for v in versions} == {first_id: _sha256(old), second_id: _sha256(new)}
    assert store.get_version(key, first_id) == old
    assert store.get_version(key, second_id) == new


def test_put_file_list_keys_and_local_copy(s3, s3_endpoint, bucket, tmp_path):
    """`put_file` uploads a binary file byte for byte (SHA-256 checked on both sides);
    `list_keys` returns keys relative to the prefix, only under the asked-for folder;
    `local_copy` gives a readable local file with the same bytes."""
    store = _resource(bucket, s3_endpoint).store()
    payload = bytes(range(256)) * 4096 + os.urandom(12_345)  # ~1 MiB, every byte value
    source = tmp_path / "blob.bin"
    source.write_bytes(payload)
    key = media_key("normalized_audio", "e1", "audio.wav")

    version_id = store.put_file(key, source).version_id

    remote = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{key}")
    assert remote["VersionId"] == version_id
    assert _sha256(remote["Body"].read()) == _sha256(payload)
    assert store.current_sha256(key) == _sha256(payload)
    assert store.put_file(key, source).version_id == version_id  # same bytes: no new version
    assert len(_all_versions(s3, bucket)) == 1

    store.put_bytes("media/normalized_audio/episode_id=e2/audio.wav", b"two")
    store.put_bytes("mediafiles/episode_id=e3/x.bin", b"sibling prefix, not under media/")
    s3.put_object(Bucket=bucket, Key="outside/media/stray.bin", Body=b"outside the lake prefix")

    assert store.list_keys("media") == [
        "media/normalized_audio/episode_id=e1/audio.wav",
        "media/normalized_audio/episode_id=e2/audio.wav",
    ]
    assert store.list_keys("media/normalized_audio/episode_id=e2") == ["media/normalized_audio/episode_id=e2/audio.wav"]
    assert store.list_keys("missing") == []

    with store.local_copy(key) as local:
        assert isinstance(local, Path) and local.is_file()
        assert local.name == "audio.wav"
        assert local.read_bytes() == payload
    assert not local.exists()  # the temporary copy is cleaned up


# --- the pipeline on S3 ------------------------------------------------------


@pytest.fixture(scope="module")
def s3_pipeline(s3, s3_endpoint, tmp_path_factory):
    """Ingest a 3 s tone WAV and an ID3-tagged MP3 into a fresh S3 lake, then run raw_media,
    normalized_audio and media_metadata for each episode. Returns what the tests inspect."""
    bucket = _new_bucket(s3)
    resource = _resource(bucket, s3_endpoint)
    store = resource.store()
    inputs = tmp_path_factory.mktemp("inputs")
    wav = samples.tone(inputs / "tone.wav", seconds=3.0, lufs=-30.0)
    mp3 = samples.mp3_with_id3(inputs / "tagged.mp3", seconds=3.0, tags={"title": ID3_TITLE})

    registered: list[str] = []
    outcomes = ingest([wav, mp3], store, MediaLimits(), register_partitions=registered.extend)
    assert [o.status for o in outcomes] == ["registered", "registered"], outcomes
    by_name = {Path(o.path).name: o.episode_id for o in outcomes}
    assert sorted(registered) == sorted(by_name.values()) and len(set(registered)) == 2

    results = {}
    for episode_id in registered:
        results[episode_id] = {
            "raw_media": BY_NAME["raw_media"].run(store, episode_id, MediaSettings()),
            "normalized_audio": BY_NAME["normalized_audio"].run(store, episode_id, MediaSettings()),
            "media_metadata": BY_NAME["media_metadata"].run(store, episode_id),
        }
    return {
        "bucket": bucket,
        "resource": resource,
        "store": store,
        "episodes": by_name,
        "sources": {"tone.wav": wav, "tagged.mp3": mp3},
        "results": results,
    }


def test_pipeline_writes_its_objects_under_the_prefix(s3, s3_pipeline):
    """Every stage ran (none skipped) and its outputs are real S3 objects under `lake/`:
    the raw bytes (same SHA-256 as the source file), the stage documents, the Parquet tables
    and the normalized WAV; nothing was written outside the prefix."""
    bucket, store = s3_pipeline["bucket"], s3_pipeline["store"]
    for stages in s3_pipeline["results"].values():
        assert {name: r.skipped for name, r in stages.items()} == {
            "raw_media": False,
            "normalized_audio": False,
            "media_metadata": False,
        }

    keys = _all_keys(s3, bucket)
    assert keys and all(k.startswith(f"{PREFIX}/") for k in keys), keys
    for name, episode_id in s3_pipeline["episodes"].items():
        expected = {
            raw_key(episode_id),
            document_key("registration", episode_id),
            document_key("raw_media", episode_id),
            document_key("normalized_audio", episode_id),
            document_key("media_metadata", episode_id),
            table_key("episodes", episode_id),
            table_key("loudness", episode_id),
            table_key("media_metadata", episode_id),
            table_key("captions", episode_id),
            media_key("normalized_audio", episode_id, "audio.wav"),
        }
        assert {f"{PREFIX}/{k}" for k in expected} <= set(keys)

        raw = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{raw_key(episode_id)}")["Body"].read()
        assert raw == s3_pipeline["sources"][name].read_bytes()

        wav_key = media_key("normalized_audio", episode_id, "audio.wav")
        wav = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{wav_key}")["Body"].read()
        assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
        outputs = s3_pipeline["results"][episode_id]["normalized_audio"].document["outputs"]
        assert outputs["audio"] == {"key": wav_key, "sha256": _sha256(wav)}
        assert store.list_keys(f"media/normalized_audio/episode_id={episode_id}") == [wav_key]


def test_duckdb_queries_the_s3_lake(s3_pipeline):
    """DuckDB, through the resource's s3fs filesystem, sees both episodes, their loudness rows
    normalized to -23 LUFS (within 1 LU), and the MP3's ID3 title in `media_metadata`."""
    resource, store, episodes = s3_pipeline["resource"], s3_pipeline["store"], s3_pipeline["episodes"]
    con = catalog.connect(store, fs=resource.filesystem())
    try:
        assert con.execute("select count(*) from episodes").fetchone()[0] == 2
        rows = con.execute(
            "select episode_id, original_name, audio_codec from episodes order by original_name"
        ).fetchall()
        assert rows == [
            (episodes["tagged.mp3"], "tagged.mp3", "mp3"),
            (episodes["tone.wav"], "tone.wav", "pcm_s16le"),
        ]

        loudness = dict(con.execute("select episode_id, output_i from loudness").fetchall())
        assert set(loudness) == set(episodes.values())
        for episode_id, output_i in loudness.items():
            assert abs(output_i - (-23.0)) <= 1.0, (episode_id, output_i)
        (input_i,) = con.execute("select input_i from loudness where episode_id = ?", [episodes["tone.wav"]]).fetchone()
        assert abs(input_i - (-30.0)) <= 1.0  # the tone really was moved, by about +7 LU

        titles = con.execute(
            "select episode_id, value from media_metadata where source = 'id3' and key = 'TIT2'"
        ).fetchall()
        assert titles == [(episodes["tagged.mp3"], ID3_TITLE)]
    finally:
        con.close()


def test_rerun_is_skipped_and_writes_no_new_versions(s3, s3_pipeline):
    """Running the stages again with unchanged inputs reports `skipped=True`, returns the same
    fingerprint, and leaves the bucket's object versions exactly as they were."""
    bucket, store = s3_pipeline["bucket"], s3_pipeline["store"]
    before = _all_versions(s3, bucket)
    assert before

    for episode_id, first in s3_pipeline["results"].items():
        again = BY_NAME["normalized_audio"].run(store, episode_id, MediaSettings())
        assert again.skipped is True
        assert again.fingerprint == first["normalized_audio"].fingerprint
        assert BY_NAME["raw_media"].run(store, episode_id, MediaSettings()).skipped is True
        assert BY_NAME["media_metadata"].run(store, episode_id).skipped is True

    assert _all_versions(s3, bucket) == before


def test_catalog_sees_objects_overwritten_in_the_same_process(s3_pipeline):
    """A long-lived process (code server, webserver) must not query stale listings: after a
    config change rewrites the loudness table, a new catalog connection sees the new rows."""
    resource, store, episodes = s3_pipeline["resource"], s3_pipeline["store"], s3_pipeline["episodes"]
    tone = episodes["tone.wav"]
    con = catalog.connect(store, fs=resource.filesystem())
    con.close()
    podcast = MediaSettings(loudness=LoudnessTarget(integrated=-16.0))
    assert BY_NAME["normalized_audio"].run(store, tone, podcast).skipped is False
    con = catalog.connect(store, fs=resource.filesystem())
    try:
        (output_i,) = con.execute("select output_i from loudness where episode_id = ?", [tone]).fetchone()
        assert abs(output_i - (-16.0)) <= 1.0
        assert len(store.versions(f"loudness/episode_id={tone}/loudness.parquet")) == 2
    finally:
        con.close()
