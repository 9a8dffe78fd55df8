"""What every stage shares: its declaration, an input fingerprint, skip-if-unchanged, and
validated writes.

A stage's outputs are a pure function of (its inputs' fingerprints, its code version, its
config). The fingerprint hashes those; when the stage document in the lake carries the same
fingerprint and every output it lists is still there with the same SHA-256, the stage does no
work and the lake is left byte-for-byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from media_assets.lib.core import contracts, quality, tables
from media_assets.lib.core.errors import QualityGateFailed
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


@dataclass(frozen=True)
class Stage:
    """One per-episode stage. The Dagster asset, `episode_job`, the catalog's deps, compute routing
    and the README's asset table all derive from it; its JSON document is checked against
    `schemas/<name>.schema.json`. Declared with `@stage` on the function that runs it."""

    name: str
    domain: str  # the package it lives in, and its asset group
    description: str
    upstream: tuple[str, ...]  # stages whose documents it reads; their fingerprints are its inputs
    code_version: str  # bump whenever its outputs would change for the same inputs
    compute_class: str  # gpu-transcription | cpu-normalization | cpu-nlp | cpu-metadata
    kinds: tuple[str, ...]  # the tools it runs and the formats it writes, as the UI shows them
    run: Callable[..., StageResult]  # run(lake, episode_id[, settings])
    tables: tuple[str, ...] = ()  # lake tables it writes (core/tables.py)
    settings: str | None = None  # the domain whose settings it reads: media, speech, text, distribution
    checks: tuple[quality.QualityCheck, ...] = ()  # its own quality gates, beside the contract every stage has

    @property
    def quality_checks(self) -> tuple[quality.QualityCheck, ...]:
        return (quality.CONTRACT, *self.checks)


def stage(
    *,
    upstream: tuple[str, ...],
    code_version: str,
    compute_class: str,
    kinds: tuple[str, ...],
    tables: tuple[str, ...] = (),
    checks: tuple[quality.QualityCheck, ...] = (),
) -> Callable[[Callable[..., StageResult]], Stage]:
    """Declare the decorated function `run(lake, episode_id[, settings])` a stage. Its name is the
    function's, its domain the package it lives in, its description the docstring (the UI shows it),
    and the settings it reads the annotation of its `settings` parameter (a domain's settings class).
    The name then holds the Stage, which the function passes to `StageRun`."""

    def declare(run: Callable[..., StageResult]) -> Stage:
        settings_class = typing.get_type_hints(run).get("settings")
        return Stage(
            name=run.__name__,
            domain=run.__module__.split(".")[-2],
            description=" ".join((run.__doc__ or "").split()),
            upstream=upstream,
            code_version=code_version,
            compute_class=compute_class,
            kinds=kinds,
            run=run,
            tables=tables,
            settings=settings_class.__module__.split(".")[-2] if settings_class else None,
            checks=checks,
        )

    return declare


@dataclass
class StageResult:
    document: dict
    skipped: bool

    @property
    def fingerprint(self) -> str:
        return self.document["fingerprint"]


class StageRun:
    """One execution of one stage for one episode. Reads the documents of the stage's upstream
    stages (`self.upstream`); their fingerprints, with any `extra_inputs`, are its inputs. Outputs
    that failed a blocking quality gate are refused (QualityGateFailed), whichever run asks."""

    def __init__(
        self, lake: LakeStore, stage: Stage, episode_id: str, config: dict, extra_inputs: dict[str, str] | None = None
    ):
        self.lake = lake
        self.stage = stage.name
        self.episode_id = episode_id
        self.code_version = stage.code_version
        self.config = config
        self.upstream = {name: read_document(lake, name, episode_id) for name in stage.upstream}
        for name, document in self.upstream.items():
            if failed := quality.blocking_failures(lake, name, episode_id, document["fingerprint"]):
                raise QualityGateFailed(
                    f"{name} failed its blocking quality gate(s) {', '.join(failed)}: {self.stage} does not run on it"
                )
        self.inputs = {name: doc["fingerprint"] for name, doc in self.upstream.items()} | (extra_inputs or {})
        self.fingerprint = fingerprint(self.stage, self.code_version, config, self.inputs)
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
