"""The dead-letter store: one validated JSON record per input or step that failed for good.

Records live in the lake under `_dlq/<record_id>.json`. The id is derived from the stage and the
subject (input path or episode id), so a failure that repeats updates its record (attempts and
timestamp) instead of piling up copies; DuckDB sees them as the `dead_letters` view.

A record is open until the same stage later succeeds for the same subject (a replay, a re-upload
of the fixed file, a re-run from the UI): then it is resolved, with the time, and kept. A record
that is new, or that fails again after it was resolved, is sent to the alert hook (lib/core/alerts).
"""

from __future__ import annotations

import hashlib
import re
import traceback as tb
from datetime import UTC, datetime

from media_assets.lib.core import alerts, contracts
from media_assets.lib.core.errors import failure_class, failure_reason
from media_assets.lib.core.lake import LakeStore

PREFIX = "_dlq"
RUN_STAGE = "run"  # the stage of records for runs that failed outside every stage


def record_id(stage: str, subject: str) -> str:
    return hashlib.sha256(f"{stage}\0{subject}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def record_key(rid: str) -> str:
    return f"{PREFIX}/{rid}.json"


def dead_letter(
    lake: LakeStore,
    *,
    stage: str,
    subject: str,
    error: BaseException,
    attempts: int,
    payload: dict,
    episode_id: str | None = None,
    path: str | None = None,
    run_id: str | None = None,
) -> dict:
    """Write (or update) the record for `subject` failing at `stage`, alert if it is (re)opened,
    and return it."""
    rid = record_id(stage, subject)
    was_open = lake.exists(record_key(rid)) and get_record(lake, rid).get("resolved_at") is None
    record = {
        "record_id": rid,
        "stage": stage,
        "subject": subject,
        "episode_id": episode_id,
        "path": path,
        "reason": failure_reason(error),
        "failure_class": failure_class(error),
        "error_type": type(error).__name__,
        "message": str(error),
        "traceback": "".join(tb.format_exception(type(error), error, error.__traceback__)),
        "attempts": attempts,
        "timestamp": _now(),
        "payload": payload,
        "run_id": run_id,
        "resolved_at": None,
    }
    lake.put_bytes(record_key(rid), contracts.dump_document("dead_letter", record))
    if not was_open:
        alerts.notify(record, alerts.AlertSettings.from_environment())
    return record


def resolve(lake: LakeStore, stage: str, subject: str) -> dict | None:
    """Mark the open record of `subject` at `stage` resolved (it has succeeded since); the record
    (None when there was nothing open)."""
    rid = record_id(stage, subject)
    if not lake.exists(record_key(rid)):
        return None
    record = get_record(lake, rid)
    if record.get("resolved_at") is not None:
        return None
    record["resolved_at"] = _now()
    lake.put_bytes(record_key(rid), contracts.dump_document("dead_letter", record))
    return record


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def list_records(lake: LakeStore, open_only: bool = False) -> list[dict]:
    records = [
        contracts.load_document("dead_letter", lake.get_bytes(key))
        for key in lake.list_keys(PREFIX)
        if key.endswith(".json")
    ]
    if open_only:
        records = [r for r in records if r.get("resolved_at") is None]
    return sorted(records, key=lambda r: (r["timestamp"], r["record_id"]))


def get_record(lake: LakeStore, rid: str) -> dict:
    if not re.fullmatch(r"[0-9a-f]{16}", rid) or not lake.exists(record_key(rid)):
        raise KeyError(f"no dead-letter record {rid!r}")
    return contracts.load_document("dead_letter", lake.get_bytes(record_key(rid)))
