"""Shared fixtures: a fresh lake per test, an isolated Dagster home, generated media, and a real
S3-compatible server on loopback."""

from __future__ import annotations

import os
import urllib.request
import uuid
from pathlib import Path

import boto3
import dagster as dg
import psycopg2
import pytest
from moto.server import ThreadedMotoServer

from media_assets.demo import samples
from media_assets.lib.core.lake import LocalStore
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.resources import SETTINGS_RESOURCES, LakeResource, SpeechResource

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
# CTranslate2 and torch ship their own OpenMP runtimes; spinning threads starve each other on small machines.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The small English model keeps the suite fast; the demo and production default is larger.
os.environ.setdefault("MEDIA_LAKE_ASR_MODEL", "tiny.en")

# The per-episode assets, in graph order: the known answer the declarations are held to.
EPISODE_ASSETS = [
    "raw_media",
    "normalized_audio",
    "normalized_video",
    "media_metadata",
    "transcript",
    "diarization",
    "speaker_transcript",
    "chapters",
    "enriched_metadata",
    "distribution",
]


@pytest.fixture
def lake(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "lake")


@pytest.fixture
def limits() -> MediaLimits:
    return MediaLimits()


@pytest.fixture
def dagster_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private DAGSTER_HOME and lake root, the working directory set to tmp_path."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("MEDIA_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid sample media, generated once per session (generators are deterministic)."""
    folder = tmp_path_factory.mktemp("media")
    return {
        "tone": samples.tone(folder / "tone.wav", seconds=4.0, lufs=-23.0),
        "mp3": samples.mp3_with_id3(
            folder / "tagged.mp3", seconds=4.0, tags={"title": "Known Title", "artist": "Known Artist"}
        ),
        "video": samples.video_with_subtitles(folder / "video.mp4", seconds=6.0),
        "speech": samples.speech(folder / "speech.wav", "The quick brown fox jumps over the lazy dog."),
    }


def ids_of(outcomes) -> list[str]:
    return [o.episode_id for o in outcomes if o.status == "registered"]


def register_episode(dagster_env: Path, path: Path, **settings) -> tuple:
    """(instance, resources, lake, episode id) for one file ingested into the test's Dagster home;
    default settings (tiny.en for speech) unless `settings` replaces a domain's resource."""
    from media_assets.instance import get_instance

    lake_root = dagster_env / "lake"
    store = LocalStore(lake_root)
    instance = get_instance()
    (outcome,) = ingest([path], store, MediaLimits(), lambda ids: instance.add_dynamic_partitions("episodes", ids))
    resources = {
        "lake": LakeResource(root=str(lake_root)),
        **{domain: resource() for domain, resource in SETTINGS_RESOURCES.items()},
        "speech": SpeechResource(asr_model="tiny.en"),
        **settings,
    }
    return instance, resources, store, outcome.episode_id


def materialize_episode(instance, resources: dict, episode_id: str, selection: list[str]):
    """One in-process run of the selected stages (with their quality gates) for one episode."""
    from media_assets.definitions import defs

    assets = [a for a in {a.key: a for a in defs().assets}.values() if a.partitions_def is not None]
    return dg.materialize(
        assets,
        partition_key=episode_id,
        instance=instance,
        resources=resources,
        selection=selection,
        raise_on_error=False,
    )


# --- a real S3 server on loopback ------------------------------------------------

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    # Never reach a proxy for the loopback server.
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
UNSET_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server (its server mode: real HTTP, no `mock_aws`) on 127.0.0.1 and a free port,
    with fake credentials in the environment (and no AWS config files, so nothing on this machine
    can leak in); stopped at module end."""
    with pytest.MonkeyPatch.context() as mp:
        empty = tmp_path_factory.mktemp("aws")
        mp.setenv("AWS_CONFIG_FILE", str(empty / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        for name in UNSET_AWS_ENV:
            mp.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            assert host == "127.0.0.1" and port > 0
            yield f"http://{host}:{port}"
        finally:
            # moto keeps its buckets in process-wide state that outlives the server: start the next
            # module's server empty.
            urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"))
            server.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    """A plain boto3 client on the S3 server, for putting uploads and checking what was written."""
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)


# --- a real PostgreSQL server (127.0.0.1:5432 here and in CI) ---------------------------

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@pytest.fixture
def postgres_db():
    """A fresh database on the local server, dropped afterwards; without a server: a skip here, an
    error under CI."""
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    except psycopg2.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432 ({exc})")
    admin.autocommit = True
    name = f"media_lake_test_{uuid.uuid4().hex[:8]}"
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
