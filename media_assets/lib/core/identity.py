"""Content identity: SHA-256 of the bytes, episode ids derived from it, `.sha256` sidecars."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from media_assets.lib.core.errors import RejectedMedia

EPISODE_ID_HEX_CHARS = 24
_HEX64 = re.compile(r"\b([0-9a-fA-F]{64})\b")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def episode_id_for(sha256_hex: str) -> str:
    """The partition key: the first 96 bits of the content hash, lowercase hex only.

    Safe for Dagster partition keys, paths and SQL literals by construction.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", sha256_hex):
        raise ValueError(f"not a lowercase sha256 hex digest: {sha256_hex!r}")
    return sha256_hex[:EPISODE_ID_HEX_CHARS]


def sidecar_path(media_path: Path) -> Path:
    return media_path.with_name(media_path.name + ".sha256")


def read_sidecar(media_path: Path) -> str | None:
    """The digest in `<file>.sha256` (bare hex or `sha256sum` format), or None without one."""
    sidecar = sidecar_path(media_path)
    if not sidecar.is_file():
        return None
    match = _HEX64.search(sidecar.read_text(encoding="utf-8", errors="replace"))
    if not match:
        raise RejectedMedia("invalid_checksum_sidecar", f"{sidecar.name} holds no SHA-256 digest")
    return match.group(1).lower()


def verify_checksum(actual: str, expected: str | None, what: str) -> None:
    if expected is not None and actual != expected:
        raise RejectedMedia(
            "checksum_mismatch",
            f"SHA-256 of {what} is {actual}, but its sidecar says {expected}",
        )
