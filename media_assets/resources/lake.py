"""The lake as a Dagster resource: a local folder by default, `s3://bucket/prefix` via dagster-aws."""

from __future__ import annotations

import os

import dagster as dg

from media_assets.lib.core.lake import LakeStore, LocalStore, S3Store, parse_s3_uri

DEFAULT_ROOT = "lake"


class LakeResource(dg.ConfigurableResource):
    """`root` is a folder (relative paths resolve against the working directory) or an S3 URI.
    For S3, credentials come from the usual AWS environment; `s3_endpoint_url` points at any
    S3-compatible server (MinIO, moto...)."""

    root: str = DEFAULT_ROOT
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    @classmethod
    def from_env(cls) -> LakeResource:
        return cls(
            root=os.environ.get("MEDIA_LAKE_ROOT", DEFAULT_ROOT),
            s3_endpoint_url=os.environ.get("MEDIA_LAKE_S3_ENDPOINT_URL") or None,
            s3_region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
        )

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def store(self) -> LakeStore:
        if not self.is_s3:
            return LocalStore(self.root)
        from dagster_aws.s3 import S3Resource  # imported only for S3 lakes: it is slow to import

        bucket, prefix = parse_s3_uri(self.root)
        client = S3Resource(endpoint_url=self.s3_endpoint_url, region_name=self.s3_region).get_client()
        store = S3Store(bucket, prefix, client)
        store.ensure_versioning()
        return store

    def filesystem(self):
        """An fsspec filesystem DuckDB can read the lake through (None for a local folder)."""
        if not self.is_s3:
            return None
        import s3fs

        client_kwargs = {"region_name": self.s3_region} if self.s3_region else {}
        # A fresh, uncached filesystem: a long-lived process must see overwritten objects.
        return s3fs.S3FileSystem(
            endpoint_url=self.s3_endpoint_url,
            client_kwargs=client_kwargs,
            skip_instance_cache=True,
            use_listings_cache=False,
        )
