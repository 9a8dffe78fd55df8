"""Lake storage: one key space, two backends (a local folder, or an S3 bucket and prefix).

Layout (Hive-style, so DuckDB reads `<root>/<table>/*/*.parquet` with hive_partitioning):
  <table>/episode_id=<id>/<table>.parquet      current version of a table's rows for an episode
  <document>/episode_id=<id>/<document>.json   current version of a JSON document
  media/<kind>/episode_id=<id>/<file>          normalized media and other binary artifacts
  raw/episode_id=<id>/original                 the ingested bytes
  identity/sha256=<sha256>/identity.json       which episode id these bytes were given (written once)
  identity/episode_id=<id>/identity.json       which bytes that id was claimed for (written once)

Every write is atomic and immutable versions stay addressable:
- local: the bytes go to `_versions/<key>/<sha256[:16]>` (temp + rename), then the current
  path is replaced by a hard link to that version (temp + rename), so readers never see a
  partial file and queries see exactly one current version per key;
- S3: one PUT per key into a bucket with object versioning; each PUT is a new version.
Writing bytes identical to the current version is a no-op (no new version), which keeps
re-runs idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import botocore.exceptions

from media_assets.lib.core.identity import sha256_file

SHA_METADATA_KEY = "sha256"


@dataclass(frozen=True)
class Version:
    version_id: str
    sha256: str
    is_current: bool


class LakeStore(Protocol):
    root_uri: str

    def put_bytes(self, key: str, data: bytes) -> Version: ...
    def put_file(self, key: str, source: Path, consume: bool = False) -> Version: ...
    def put_new(self, key: str, data: bytes) -> bool: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def current_sha256(self, key: str) -> str | None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def listing(self, prefix: str) -> dict[str, str]: ...
    def versions(self, key: str) -> list[Version]: ...
    def get_version(self, key: str, version_id: str) -> bytes: ...
    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def scratch_dir(self) -> contextlib.AbstractContextManager[Path]: ...
    def uri(self, key: str) -> str: ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid lake key: {key!r}")
    return key


class LocalStore:
    """A lake in a local folder."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.root_uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _version_dir(self, key: str) -> Path:
        return self.root / "_versions" / check_key(key)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def current_sha256(self, key: str) -> str | None:
        path = self._path(key)
        return sha256_file(path) if path.is_file() else None

    def put_bytes(self, key: str, data: bytes) -> Version:
        with tempfile.NamedTemporaryFile(dir=self._staging_dir(), delete=False) as tmp:
            tmp.write(data)
        try:
            return self._commit(key, Path(tmp.name))
        finally:
            Path(tmp.name).unlink(missing_ok=True)

    def put_new(self, key: str, data: bytes) -> bool:
        """Write `data` only if `key` does not exist yet, atomically: of concurrent writers exactly
        one gets True."""
        with tempfile.NamedTemporaryFile(dir=self._staging_dir(), delete=False) as tmp:
            tmp.write(data)
        try:
            return self._commit(key, Path(tmp.name), replace=False) is not None
        finally:
            Path(tmp.name).unlink(missing_ok=True)

    def put_file(self, key: str, source: Path, consume: bool = False) -> Version:
        """Store a copy of `source`; with `consume` (a scratch file from `scratch_dir`) the file
        itself is moved in, which saves copying large media."""
        with tempfile.NamedTemporaryFile(dir=self._staging_dir(), delete=False) as tmp:
            pass
        try:
            if consume:
                os.replace(source, tmp.name)
            else:
                shutil.copyfile(source, tmp.name)
            return self._commit(key, Path(tmp.name))
        finally:
            Path(tmp.name).unlink(missing_ok=True)

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A temporary folder on the lake's file system, so finished files move in by rename."""
        with tempfile.TemporaryDirectory(dir=self._staging_dir(), prefix="scratch-") as folder:
            yield Path(folder)

    def _staging_dir(self) -> Path:
        staging = self.root / "_versions" / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        return staging

    def _commit(self, key: str, staged: Path, replace: bool = True) -> Version | None:
        """Make `staged` an immutable version of `key`, then its current one (without `replace`,
        only if `key` has none yet: None when it has)."""
        sha = sha256_file(staged)
        version_id = sha[:16]
        version_path = self._version_dir(key) / version_id
        current = self._path(key)
        if current.is_file() and version_path.is_file() and os.path.samefile(current, version_path):
            return Version(version_id, sha, is_current=True)
        version_path.parent.mkdir(parents=True, exist_ok=True)
        if not version_path.is_file():
            os.chmod(staged, 0o444)  # versions are immutable; the current path is a hard link to one
            os.replace(staged, version_path)
        current.parent.mkdir(parents=True, exist_ok=True)
        if not replace:
            try:
                os.link(version_path, current)
            except FileExistsError:
                return None
            return Version(version_id, sha, is_current=True)
        link = current.with_name(f".{current.name}.{version_id}.tmp")
        link.unlink(missing_ok=True)
        os.link(version_path, link)
        os.replace(link, current)
        return Version(version_id, sha, is_current=True)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(self.listing(prefix))

    def listing(self, prefix: str) -> dict[str, str]:
        """Each key under `prefix`, with a token that changes when the key gets a new version (the
        current path is a hard link to its version's file, so the inode tells them apart)."""
        base = self.root / prefix
        found = {}
        for path in base.rglob("*") if base.exists() else ():
            try:
                info = path.stat()
            except FileNotFoundError:
                continue  # replaced or removed meanwhile
            if stat.S_ISREG(info.st_mode) and not path.name.startswith("."):
                found[str(path.relative_to(self.root))] = f"{info.st_ino}:{info.st_size}"
        return found

    def versions(self, key: str) -> list[Version]:
        folder = self._version_dir(key)
        if not folder.is_dir():
            return []
        current = self._path(key)
        found = []
        for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns):
            is_current = current.is_file() and os.path.samefile(current, path)
            found.append(Version(path.name, sha256_file(path), is_current))
        return found

    def get_version(self, key: str, version_id: str) -> bytes:
        return (self._version_dir(key) / check_key(version_id)).read_bytes()

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"not in the lake: {key}")
        yield path


class S3Store:
    """A lake under `s3://bucket/prefix` in a bucket with object versioning enabled."""

    def __init__(self, bucket: str, prefix: str, client):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.root_uri = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"

    def ensure_versioning(self) -> None:
        status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status != "Enabled":
            self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def _head(self, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def current_sha256(self, key: str) -> str | None:
        head = self._head(key)
        return None if head is None else head.get("Metadata", {}).get(SHA_METADATA_KEY)

    def _current_if_same(self, key: str, sha: str) -> Version | None:
        """The current version when it already holds these bytes (then nothing is written)."""
        head = self._head(key)
        if head is not None and head.get("Metadata", {}).get(SHA_METADATA_KEY) == sha:
            return Version(head.get("VersionId") or sha[:16], sha, is_current=True)
        return None

    def put_bytes(self, key: str, data: bytes) -> Version:
        sha = hashlib.sha256(data).hexdigest()
        if same := self._current_if_same(key, sha):
            return same
        response = self.client.put_object(
            Bucket=self.bucket, Key=self._object_key(key), Body=data, Metadata={SHA_METADATA_KEY: sha}
        )
        return Version(response.get("VersionId") or sha[:16], sha, is_current=True)

    def put_new(self, key: str, data: bytes) -> bool:
        """Write `data` only if `key` does not exist yet (an S3 conditional write: of concurrent
        writers exactly one gets True)."""
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._object_key(key),
                Body=data,
                Metadata={SHA_METADATA_KEY: hashlib.sha256(data).hexdigest()},
                IfNoneMatch="*",
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise
        return True

    def put_file(self, key: str, source: Path, consume: bool = False) -> Version:
        """Upload a file (multipart above 8 MiB: still atomic, the object appears on completion)."""
        sha = sha256_file(Path(source))
        if same := self._current_if_same(key, sha):
            return same
        self.client.upload_file(
            str(source), self.bucket, self._object_key(key), ExtraArgs={"Metadata": {SHA_METADATA_KEY: sha}}
        )
        return Version(self._head(key).get("VersionId") or sha[:16], sha, is_current=True)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"].read()

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(self.listing(prefix))

    def listing(self, prefix: str) -> dict[str, str]:
        """Each key under `prefix`, with its ETag (changes when the object is rewritten)."""
        full = "/".join(p for p in (self.prefix, prefix.strip("/")) if p)
        full = full + "/" if full else ""
        strip = len(self.prefix) + 1 if self.prefix else 0
        found = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            found.update({item["Key"][strip:]: item["ETag"] for item in page.get("Contents", [])})
        return found

    def versions(self, key: str) -> list[Version]:
        object_key = self._object_key(key)
        items = [
            item
            for page in self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=object_key
            )
            for item in page.get("Versions", [])
            if item["Key"] == object_key
        ]
        found = []
        for item in reversed(items):  # S3 lists a key's versions newest first; return oldest first
            head = self.client.head_object(Bucket=self.bucket, Key=object_key, VersionId=item["VersionId"])
            found.append(
                Version(item["VersionId"], head.get("Metadata", {}).get(SHA_METADATA_KEY, ""), bool(item["IsLatest"]))
            )
        return found

    def get_version(self, key: str, version_id: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._object_key(key), VersionId=version_id)[
            "Body"
        ].read()

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="media-lake-") as folder:
            yield Path(folder)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="media-lake-") as folder:
            path = Path(folder) / Path(key).name
            self.client.download_file(self.bucket, self._object_key(key), str(path))
            yield path


def parse_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"not an s3://bucket/prefix URI: {uri!r}")
    return bucket, prefix


# Keys of the layout above, in one place.
def table_key(table: str, episode_id: str) -> str:
    return f"{table}/episode_id={episode_id}/{table}.parquet"


def document_key(document: str, episode_id: str) -> str:
    return f"{document}/episode_id={episode_id}/{document}.json"


MEDIA_PREFIX = "media/"  # the artifacts people open: audio, video, subtitles, chapters, MP3


def media_key(kind: str, episode_id: str, filename: str) -> str:
    return f"{MEDIA_PREFIX}{kind}/episode_id={episode_id}/{filename}"


def identity_key(sha256: str) -> str:
    """Which episode id these bytes were given: written once, before the episode's first byte."""
    return f"identity/sha256={sha256}/identity.json"


DUPLICATES_PREFIX = "_duplicates"


def duplicate_key(source: str, sha256: str) -> str:
    """The record of an upload (by name and content) that an existing episode already holds."""
    name = hashlib.sha256(f"{source}\0{sha256}".encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{DUPLICATES_PREFIX}/{name}.json"


def episode_claim_key(episode_id: str) -> str:
    """Which bytes an episode id was claimed for: written once, before the id is given out."""
    return f"identity/episode_id={episode_id}/identity.json"


def raw_key(episode_id: str) -> str:
    return f"raw/episode_id={episode_id}/original"
