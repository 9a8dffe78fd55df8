"""What every stage shares: an input fingerprint, skip-if-unchanged, and validated writes.

A stage's outputs are a pure function of (its inputs' fingerprints, its code version, its
config). The fingerprint hashes those; when the stage document in the lake carries the same
fingerprint and every output it lists is still there with the same SHA-256, the stage does no
work and the lake is left byte-for-byte as it was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from media_assets.lib.core import contracts, tables
from media_assets.lib.core.lake import LakeStore, document_key, table_key


def fingerprint(stage: str, code_version: str, config: dict, inputs: dict[str, str]) -> str:
    canonical = json.dumps(
        {"stage": stage, "code_version": code_version, "config": config, "inputs": inputs},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_document(lake: LakeStore, stage: str, episode_id: str) -> dict:
    """A stage's current JSON document, validated against its schema on read."""
    key = document_key(stage, episode_id)
    if not lake.exists(key):
        raise FileNotFoundError(f"{stage} has not been materialized for episode {episode_id} ({key})")
    return contracts.load_document(stage, lake.get_bytes(key))


@dataclass
class StageResult:
    document: dict
    skipped: bool

    @property
    def fingerprint(self) -> str:
        return self.document["fingerprint"]


class StageRun:
    """One execution of one stage for one episode."""

    def __init__(
        self, lake: LakeStore, stage: str, episode_id: str, code_version: str, config: dict, inputs: dict[str, str]
    ):
        self.lake = lake
        self.stage = stage
        self.episode_id = episode_id
        self.code_version = code_version
        self.config = config
        self.inputs = inputs
        self.fingerprint = fingerprint(stage, code_version, config, inputs)
        self.outputs: dict[str, dict] = {}

    def up_to_date(self) -> StageResult | None:
        """The previous result when nothing changed and all its outputs are intact."""
        key = document_key(self.stage, self.episode_id)
        if not self.lake.exists(key):
            return None
        document = contracts.load_document(self.stage, self.lake.get_bytes(key))
        if document["fingerprint"] != self.fingerprint:
            return None
        for output in document["outputs"].values():
            if self.lake.current_sha256(output["key"]) != output["sha256"]:
                return None
        return StageResult(document, skipped=True)

    def _record(self, name: str, key: str, sha256: str) -> None:
        self.outputs[name] = {"key": key, "sha256": sha256}

    def put_table(self, table: str, rows: list[dict]) -> None:
        data = tables.to_parquet_bytes(table, rows)
        key = table_key(table, self.episode_id)
        self._record(table, key, self.lake.put_bytes(key, data).sha256)

    def put_file(self, name: str, key: str, path: Path) -> None:
        """Store a finished scratch file (it is moved into the lake where the store allows)."""
        self._record(name, key, self.lake.put_file(key, path, consume=True).sha256)

    def finish(self, payload: dict) -> StageResult:
        """Validate and write the stage document last, so it only ever lists complete outputs."""
        document = {
            "episode_id": self.episode_id,
            "stage": self.stage,
            "code_version": self.code_version,
            "fingerprint": self.fingerprint,
            "inputs": self.inputs,
            "config": self.config,
            "outputs": self.outputs,
            **payload,
        }
        self.lake.put_bytes(document_key(self.stage, self.episode_id), contracts.dump_document(self.stage, document))
        return StageResult(document, skipped=False)


def read_table(lake: LakeStore, table: str, episode_id: str) -> list[dict]:
    """A stage table's current rows for one episode ([] when the stage wrote none)."""
    key = table_key(table, episode_id)
    return tables.from_parquet_bytes(table, lake.get_bytes(key)) if lake.exists(key) else []
