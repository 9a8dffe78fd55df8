"""Shared fixtures: a fresh lake per test, an isolated Dagster home, and generated media."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

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
