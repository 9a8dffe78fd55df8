"""Ingest: find the inputs under the given paths, validate each, store its bytes under its
content hash and register it as an episode. Every input ends as exactly one outcome:
registered, duplicate or rejected (with a reason and a dead-letter record).

Identity is the SHA-256 of the bytes. The episode id (the partition key) is a slug of the first
upload's name plus a hash prefix, so people can find an episode in the UI; it is claimed for the
hash before anything else is stored (`identity/`), and never changes. Names are data: a slug
keeps only lowercase letters, digits and dashes, and a path is never built from a name.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from media_assets.lib.core import contracts
from media_assets.lib.core.dead_letters import dead_letter, resolve
from media_assets.lib.core.errors import RejectedMedia
from media_assets.lib.core.identity import episode_id_candidates, legacy_episode_id, read_sidecar
from media_assets.lib.core.lake import (
    LakeStore,
    document_key,
    duplicate_key,
    episode_claim_key,
    identity_key,
    raw_key,
)
from media_assets.lib.media.media_contract import MediaLimits, inspect_media

SIDECAR_SUFFIX = ".sha256"
REGISTRATION = "registration"  # the document ingest writes per episode


@dataclass(frozen=True)
class Outcome:
    path: str
    episode_id: str | None
    status: str  # registered | duplicate | rejected
    reason: str | None = None
    message: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def as_text(path: Path | str) -> str:
    """A file name as printable text, even when it is not valid UTF-8."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def discover(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(input, folder it must stay inside) for every file under `paths`, sorted, sidecars
    excluded (they describe inputs, they are not inputs). Symlinks are listed, not followed."""
    found: list[tuple[Path, Path]] = []
    for given in paths:
        given = Path(os.path.abspath(given))
        if given.is_dir() and not given.is_symlink():
            for folder, dirs, files in os.walk(given, followlinks=False):
                dirs.sort()
                linked_dirs = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
                for name in sorted([*files, *linked_dirs]):
                    if not name.endswith(SIDECAR_SUFFIX):
                        found.append((Path(folder) / name, given))
        else:
            found.append((given, given.parent))
    return found


def check_location(path: Path, root: Path) -> None:
    if not os.path.lexists(path):
        raise RejectedMedia("not_found", "no such file")
    resolved = path.resolve()
    if path.is_symlink() and not resolved.is_relative_to(root.resolve()):
        raise RejectedMedia("symlink_outside_root", "a symlink that points outside the ingested folder")
    if not resolved.is_file():
        raise RejectedMedia("not_a_regular_file", "not a regular file")


def ingest_one(path: Path, root: Path, source: str, lake: LakeStore, limits: MediaLimits, seen: set[str]) -> Outcome:
    """Ingest the file at `path`, known to users as `source` (its path, or the URI it came from)."""
    check_location(path, root)
    media = inspect_media(path, limits, expected_sha256=read_sidecar(path))
    episode_id = episode_id_of(lake, media.sha256, source)
    if episode_id in seen or lake.exists(document_key(REGISTRATION, episode_id)):
        seen.add(episode_id)
        if read_registration(lake, episode_id)["source_uri"] != source:  # not this upload ingested again
            record = {"source_uri": source, "sha256": media.sha256, "episode_id": episode_id}
            lake.put_new(duplicate_key(source, media.sha256), contracts.dump_document("duplicate", record))
        return Outcome(source, episode_id, "duplicate", "same bytes as an existing episode")
    if lake.put_file(raw_key(episode_id), path).sha256 != media.sha256:
        raise RejectedMedia("changed_during_ingest", "the file changed while it was being ingested")
    registration = {
        "episode_id": episode_id,
        "sha256": media.sha256,
        "size_bytes": media.size_bytes,
        "source_uri": source,
        "original_name": as_text(path.name),
        "sidecar_verified": read_sidecar(path) is not None,
    }
    lake.put_bytes(document_key(REGISTRATION, episode_id), contracts.dump_document(REGISTRATION, registration))
    seen.add(episode_id)
    return Outcome(source, episode_id, "registered")


def known_episode_id(lake: LakeStore, sha256: str) -> str | None:
    """The episode id these bytes were given, if any (also by a lake made before slugs, whose ids
    are bare 24-hex hash prefixes)."""
    if lake.exists(identity_key(sha256)):
        return _identity(lake, identity_key(sha256))["episode_id"]
    legacy = legacy_episode_id(sha256)
    return legacy if lake.exists(document_key(REGISTRATION, legacy)) else None


def episode_id_of(lake: LakeStore, sha256: str, name: str) -> str:
    """The episode id of these bytes: the one they were given before, else a new one from `name`,
    claimed for good.

    Both directions are claimed with create-only writes: the id for the hash (so another content
    whose slug and 48-bit prefix are equal gets the slug with its whole hash instead), then the
    hash for the id (so of two uploads of the same bytes at once, both get the winner's id).
    """
    if (known := known_episode_id(lake, sha256)) is not None:
        return known
    for candidate in episode_id_candidates(sha256, name):
        claim = contracts.dump_document("identity", {"sha256": sha256, "episode_id": candidate})
        lake.put_new(episode_claim_key(candidate), claim)
        if _identity(lake, episode_claim_key(candidate))["sha256"] == sha256:
            break
    lake.put_new(identity_key(sha256), claim)
    return _identity(lake, identity_key(sha256))["episode_id"]


def _identity(lake: LakeStore, key: str) -> dict:
    return contracts.load_document("identity", lake.get_bytes(key))


def ingest(
    paths: Iterable[Path],
    lake: LakeStore,
    limits: MediaLimits,
    register_partitions: Callable[[list[str]], None],
    source_of: Callable[[Path], str] = as_text,
) -> list[Outcome]:
    """Ingest every input under `paths`; rejections are dead-lettered and the batch goes on.
    `source_of` names an input in outcomes and records (files fetched from elsewhere keep the
    name they came under); an input that succeeds resolves the dead letter of an earlier try."""
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for path, root in discover(paths):
        source = source_of(path)
        try:
            outcomes.append(ingest_one(path, root, source, lake, limits, seen))
            resolve(lake, "ingest", source)
        except (RejectedMedia, OSError) as exc:
            rejection = exc if isinstance(exc, RejectedMedia) else RejectedMedia("io_error", str(exc))
            rejection.__cause__ = None if rejection is exc else exc
            dead_letter(
                lake,
                stage="ingest",
                subject=source,
                path=source,
                error=rejection,
                attempts=1,
                payload={"path": source, "limits": dataclasses.asdict(limits)},
            )
            outcomes.append(Outcome(source, None, "rejected", rejection.reason, rejection.message))
    episode_ids = sorted({o.episode_id for o in outcomes if o.episode_id})
    if episode_ids:
        register_partitions(episode_ids)
    return outcomes


def read_registration(lake: LakeStore, episode_id: str) -> dict:
    key = document_key(REGISTRATION, episode_id)
    if not lake.exists(key):
        raise FileNotFoundError(f"episode {episode_id} was never ingested ({key} is missing)")
    return contracts.load_document(REGISTRATION, lake.get_bytes(key))
