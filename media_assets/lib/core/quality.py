"""Quality gates: checks of a stage's stored outputs, declared with the stage and run right after
it. Their outcomes show in the UI as asset checks and land in the lake's `quality_checks` table.

A blocking gate guards what must not flow downstream (the contract of every stage, the loudness of
the audio every later stage hears): when it fails, the episode's later stages do not run and the
episode is dead-lettered. Other gates warn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from media_assets.lib.core import contracts, tables
from media_assets.lib.core.lake import LakeStore, document_key

TABLE = "quality_checks"


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
    """A check's outcome; a check that cannot even read what it checks has failed, saying why."""
    try:
        return check.evaluate(lake, document, settings)
    except Exception as exc:
        return CheckOutcome(False, f"{type(exc).__name__}: {exc}")


def rows(document: dict, outcomes: list[tuple[QualityCheck, CheckOutcome]]) -> list[dict]:
    return [
        {
            "episode_id": document["episode_id"],
            "stage": document["stage"],
            "check_name": check.name,
            "passed": outcome.passed,
            "blocking": check.blocking,
            "summary": outcome.summary,
            "figures": json.dumps(outcome.figures, sort_keys=True),
            "stage_fingerprint": document["fingerprint"],
        }
        for check, outcome in outcomes
    ]


def record_key(stage: str, episode_id: str) -> str:
    """One file per stage and episode, beside the other tables' files for DuckDB's glob."""
    return f"{TABLE}/episode_id={episode_id}/{stage}.parquet"


def record(lake: LakeStore, document: dict, outcomes: list[tuple[QualityCheck, CheckOutcome]]) -> None:
    data = tables.to_parquet_bytes(TABLE, rows(document, outcomes))
    lake.put_bytes(record_key(document["stage"], document["episode_id"]), data)
