"""Where uploads land: a local folder (default ./inbox) or an S3 prefix (`s3://bucket/prefix`).

Both are listed as candidates for lib/media/inbox.py's plan, and fetched as local files for
ingest, which names them by where they came from (a path, or an `s3://` URI). S3 objects are
listed with dagster-aws's `get_objects` and a last-modified cursor; the cursor keeps the keys
handled in the last S3_RECENT_NS as well, because `get_objects` alone misses keys modified after
they were seen (dagster issue 22892) and objects whose LastModified (the start of a long upload)
is older than the newest one handled.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from media_assets.lib.core.lake import parse_s3_uri
from media_assets.lib.media import inbox
from media_assets.lib.media.ingest import SIDECAR_SUFFIX, as_text

DEFAULT_LOCATION = "inbox"


class InboxResource(dg.ConfigurableResource):
    """`location` is a folder (relative paths resolve against the working directory) or an S3 URI;
    `s3_endpoint_url` points at any S3-compatible server, as for the lake."""

    location: str = DEFAULT_LOCATION
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    @classmethod
    def from_env(cls) -> InboxResource:
        return cls(
            location=os.environ.get("MEDIA_LAKE_INBOX", DEFAULT_LOCATION),
            s3_endpoint_url=os.environ.get("MEDIA_LAKE_S3_ENDPOINT_URL") or None,
            s3_region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
        )

    @property
    def is_s3(self) -> bool:
        return self.location.startswith("s3://")

    @property
    def recent_ns(self) -> int:
        return inbox.S3_RECENT_NS if self.is_s3 else inbox.RECENT_NS

    def describe(self) -> str:
        return self.location if self.is_s3 else str(Path(self.location).resolve())

    def _client(self):
        from dagster_aws.s3 import S3Resource

        return S3Resource(endpoint_url=self.s3_endpoint_url, region_name=self.s3_region).get_client()

    def candidates(self, since_ns: int) -> list[inbox.Candidate]:
        """The uploads changed at or after `since_ns` (and possibly some before: plan filters)."""
        if not self.is_s3:
            return inbox.folder_candidates(Path(self.location).resolve())
        from dagster_aws.s3.sensor import get_objects

        bucket, prefix = parse_s3_uri(self.location)
        # get_objects keeps objects strictly after `since_last_modified`; the mark itself is new.
        since = datetime.fromtimestamp(since_ns / 1e9, UTC) - timedelta(seconds=1) if since_ns else None
        objects = get_objects(bucket, prefix, since_last_modified=since, client=self._client())
        return [
            inbox.Candidate(
                name=obj["Key"],
                changed_ns=int(obj["LastModified"].timestamp() * 1e9),
                size=obj["Size"],
                state=obj["ETag"],
                complete=True,  # an S3 object is visible only once its upload is complete
            )
            for obj in objects
            if not obj["Key"].endswith(SIDECAR_SUFFIX) and not obj["Key"].endswith("/")
        ]

    def source_name(self, name: str) -> str:
        """How users know the upload `name` (a candidate's): its path, or its `s3://` URI."""
        return f"s3://{parse_s3_uri(self.location)[0]}/{name}" if self.is_s3 else name

    @contextlib.contextmanager
    def fetched(self, sources: list[str]) -> Iterator[tuple[list[Path], Callable[[Path], str]]]:
        """Local files for `sources` (paths, or `s3://` URIs with their sidecars), and the function
        that names each file by its source, for ingest. Downloads are removed afterwards."""
        remote = [s for s in sources if s.startswith("s3://")]
        local = [Path(s) for s in sources if not s.startswith("s3://")]
        if not remote:
            yield local, as_text
            return
        from botocore.exceptions import ClientError

        client = self._client()
        with tempfile.TemporaryDirectory(prefix="media-lake-inbox-") as scratch:
            names: dict[Path, str] = {}
            for n, uri in enumerate(remote):
                bucket, key = parse_s3_uri(uri)
                target = Path(scratch) / str(n) / Path(key).name
                target.parent.mkdir()
                client.download_file(bucket, key, str(target))
                try:
                    client.download_file(bucket, key + SIDECAR_SUFFIX, str(target) + SIDECAR_SUFFIX)
                except ClientError as exc:  # no sidecar is fine; a sidecar that cannot be read is not
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                        raise
                names[target] = uri
            yield [*local, *names], lambda path: names.get(path) or as_text(path)
