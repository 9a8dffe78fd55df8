"""Content identity: SHA-256 of the bytes, episode ids derived from it, `.sha256` sidecars."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path, PurePosixPath

from media_assets.lib.core.errors import RejectedMedia

# Lowercase letters, digits and single dashes: safe as a Dagster partition key, a path segment
# and a SQL literal. Both key forms match it: `<slug>-<hash prefix>` and the 24-hex keys that
# lakes made before slugs.
EPISODE_ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
LEGACY_HEX_CHARS = 24
KEY_HEX_CHARS = 12
SLUG_MAX_CHARS = 40
_HEX64 = re.compile(r"\b([0-9a-fA-F]{64})\b")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slug(name: str) -> str:
    """A readable, safe rendering of an upload's name: `Episode 42 (Final).MP3` -> `episode-42-final`.

    Accents are folded to ASCII, anything else that is not a letter or digit becomes a dash, and
    the result is cut at a word boundary. A name with nothing readable gives `episode`.
    """
    stem = PurePosixPath(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    ascii_only = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_only.lower())
    text = ""
    for word in words:
        candidate = f"{text}-{word}" if text else word
        if len(candidate) > SLUG_MAX_CHARS:
            break
        text = candidate
    return text or (words[0][:SLUG_MAX_CHARS] if words else "episode")


def _check_sha256(sha256_hex: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256_hex):
        raise ValueError(f"not a lowercase sha256 hex digest: {sha256_hex!r}")


def episode_id_candidates(sha256_hex: str, name: str) -> tuple[str, str]:
    """The keys a new episode may get, in order of preference: `<slug>-<first 48 bits of the hash>`,
    and, should another episode already hold that one, the slug with the whole hash (which no
    other content can share)."""
    _check_sha256(sha256_hex)
    readable = slug(name)
    return f"{readable}-{sha256_hex[:KEY_HEX_CHARS]}", f"{readable}-{sha256_hex}"


def legacy_episode_id(sha256_hex: str) -> str:
    """The key lakes gave episodes before slugs: the first 96 bits of the hash, in hex."""
    _check_sha256(sha256_hex)
    return sha256_hex[:LEGACY_HEX_CHARS]


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
