"""Quality gates: checks of a stage's stored outputs, declared with the stage and run right after
it. Their outcomes show in the UI as asset checks and land in the lake's `quality_checks` table;
an unchanged stage re-uses its recorded outcomes instead of reading its outputs again.

A blocking gate guards what must not flow downstream (the contract of every stage, the loudness of
the audio every later stage hears): when it fails, the episode is dead-lettered and no later stage
runs on those outputs, in that run or any other (StageRun refuses them). Other gates warn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from media_assets.lib.core import contracts, tables
from media_assets.lib.core.errors import is_transient
from media_assets.lib.core.lake import LakeStore, document_key

TABLE = "quality_checks"
GATES_VERSION = "1"  # bump when a gate's logic changes, so that unchanged outputs are checked again


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    summary: str
    figures: dict = field(default_factory=dict)  # what was measured, and the limits it was held to


@dataclass(frozen=True)
class QualityCheck:
    name: str
    description: str
    blocking: bool
    evaluate: Callable[[LakeStore, dict, object], CheckOutcome]  # (lake, stage document, domain settings)


def check_contract(lake: LakeStore, document: dict, settings: object) -> CheckOutcome:
    """Every output the document lists is present with its recorded SHA-256; tables re-read
    against their column contracts; the document against its JSON Schema."""
    stage, episode_id = document["stage"], document["episode_id"]
    contracts.load_document(stage, lake.get_bytes(document_key(stage, episode_id)))
    for name, output in document["outputs"].items():
        current = lake.current_sha256(output["key"])
        if current != output["sha256"]:
            return CheckOutcome(False, f"output {name} ({output['key']}) is {current or 'missing'}, not as written")
        if name in tables.TABLES:
            tables.from_parquet_bytes(name, lake.get_bytes(output["key"]))
    return CheckOutcome(True, f"document and {len(document['outputs'])} output(s) valid", {})


CONTRACT = QualityCheck(
    "contract",
    "The stage document validates against its JSON Schema, every table against its column contract, and "
    "every listed output is present with the SHA-256 recorded when it was written.",
    blocking=True,
    evaluate=check_contract,
)


def evaluate(check: QualityCheck, lake: LakeStore, document: dict, settings: object) -> CheckOutcome:
    """A check's outcome. A check that cannot read what it checks has failed, saying why; a transient
    error (errors.is_transient) propagates, to be retried like any stage's."""
    try:
        return check.evaluate(lake, document, settings)
    except Exception as exc:
        if is_transient(exc):
            raise
        return CheckOutcome(False, f"{type(exc).__name__}: {exc}")


def gates_fingerprint(document: dict, checks: Sequence[QualityCheck], settings: object) -> str:
    """What the gates' outcomes depend on: the checked outputs (the stage's fingerprint), which
    gates, their code, and the domain's quality limits (`settings.quality`, where it has them)."""
    limits = getattr(settings, "quality", None)
    canonical = json.dumps(
        {
            "version": GATES_VERSION,
            "stage": document["fingerprint"],
            "checks": [check.name for check in checks],
            "limits": dataclasses.asdict(limits) if limits is not None else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record_key(stage: str, episode_id: str) -> str:
    """One file per stage and episode, beside the other tables' files for DuckDB's glob."""
    return f"{TABLE}/episode_id={episode_id}/{stage}.parquet"


def _recorded_rows(lake: LakeStore, stage: str, episode_id: str) -> list[dict]:
    key = record_key(stage, episode_id)
    return tables.from_parquet_bytes(TABLE, lake.get_bytes(key)) if lake.exists(key) else []


def _outcome(row: dict) -> CheckOutcome:
    return CheckOutcome(row["passed"], row["summary"], json.loads(row["figures"]))


def run_gates(
    lake: LakeStore, document: dict, checks: Sequence[QualityCheck], settings: object, reuse: bool
) -> list[tuple[QualityCheck, CheckOutcome]]:
    """Evaluate the gates on a stage's stored outputs and record them; with `reuse` (the stage did
    no work), outcomes recorded for the same gates fingerprint are returned without re-reading."""
    fingerprint = gates_fingerprint(document, checks, settings)
    if reuse:
        rows = _recorded_rows(lake, document["stage"], document["episode_id"])
        recorded = {r["check_name"]: r for r in rows if r["gates_fingerprint"] == fingerprint}
        if len(rows) == len(recorded) and set(recorded) == {check.name for check in checks}:
            return [(check, _outcome(recorded[check.name])) for check in checks]
    outcomes = [(check, evaluate(check, lake, document, settings)) for check in checks]
    rows = [
        {
            "episode_id": document["episode_id"],
            "stage": document["stage"],
            "check_name": check.name,
            "passed": outcome.passed,
            "blocking": check.blocking,
            "summary": outcome.summary,
            "figures": json.dumps(outcome.figures, sort_keys=True),
            "stage_fingerprint": document["fingerprint"],
            "gates_fingerprint": fingerprint,
        }
        for check, outcome in outcomes
    ]
    lake.put_bytes(record_key(document["stage"], document["episode_id"]), tables.to_parquet_bytes(TABLE, rows))
    return outcomes


def blocking_failures(lake: LakeStore, stage: str, episode_id: str, fingerprint: str) -> list[str]:
    """The blocking gates that the stage's outputs with this fingerprint failed."""
    return [
        r["check_name"]
        for r in _recorded_rows(lake, stage, episode_id)
        if r["blocking"] and not r["passed"] and r["stage_fingerprint"] == fingerprint
    ]
