"""Which inbox files are ready to ingest, remembered in a cursor that stays small.

- New: a file whose inode changed (ctime) at or after the cursor's mark and that was not handled
  since. ctime, not mtime: a file moved or copied in with an old mtime still counts as new, and a
  file rewritten in place is new again.
- Complete: its size and mtime are the same at two looks, or its `.sha256` sidecar is there (an
  uploader that writes the sidecar last marks the upload complete, with no second look).
- Bounded: at most `max_files` files and `max_bytes` bytes a tick (a file larger than that alone,
  so it is not held back forever), and only the oldest `max_files * LOOKS_PER_READY` new files are
  looked at; the rest waits for the next tick.
- Small: the mark moves up to the oldest file still in flight, but never closer than RECENT_NS to
  the scan (a file created while the inbox is listed, in the same clock tick as one handled, must
  still count as new); the cursor keeps only the files handled at or after the mark and those
  waiting for a second look, whatever the inbox holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from media_assets.lib.core.identity import sidecar_path
from media_assets.lib.media.ingest import discover

RECENT_NS = 30 * 10**9  # one tick: also covers coarse file-system clocks and a little clock skew
LOOKS_PER_READY = 5  # new files looked at per tick, per file that may be ingested: bounds the cursor


@dataclass(frozen=True)
class InboxCursor:
    mark_ns: int = 0  # every file whose ctime is before this was handled
    handled: dict[str, int] = field(default_factory=dict)  # path -> ctime, of files handled at or after the mark
    waiting: dict[str, str] = field(default_factory=dict)  # path -> "size:mtime" at its first look

    def to_json(self) -> str:
        return json.dumps({"mark_ns": self.mark_ns, "handled": self.handled, "waiting": self.waiting}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> InboxCursor:
        return cls(**json.loads(text)) if text else cls()


@dataclass(frozen=True)
class Plan:
    ready: list[Path]  # ingest these now
    cursor: InboxCursor  # to store once they are ingested
    waiting: int  # files seen once, to be looked at again
    deferred: int  # complete files left for the next tick by the bounds


def scan(inbox: Path) -> list[tuple[Path, os.stat_result]]:
    """Every candidate file under the inbox (sidecars excluded), with its lstat."""
    return [(path, path.lstat()) for path, _ in discover([inbox])] if inbox.is_dir() else []


def plan(
    files: list[tuple[Path, os.stat_result]], cursor: InboxCursor, max_files: int, max_bytes: int, scanned_at_ns: int
) -> Plan:
    """What to ingest now, from `files` as listed by a scan that started at `scanned_at_ns`."""
    new = sorted(
        (stat.st_ctime_ns, str(path), path, stat)
        for path, stat in files
        if stat.st_ctime_ns >= cursor.mark_ns and cursor.handled.get(str(path)) != stat.st_ctime_ns
    )
    ready: list[Path] = []
    handled = dict(cursor.handled)
    waiting: dict[str, str] = {}
    looked_at = new[: max_files * LOOKS_PER_READY]  # the oldest; the rest are looked at in later ticks
    in_flight = [ctime for ctime, *_ in new[len(looked_at) : len(looked_at) + 1]]  # ctimes not handled
    size = 0
    for ctime, key, path, stat in looked_at:
        state = f"{stat.st_size}:{stat.st_mtime_ns}"
        if cursor.waiting.get(key) != state and not sidecar_path(path).is_file():
            waiting[key] = state
            in_flight.append(ctime)
        elif len(ready) >= max_files or (ready and size + stat.st_size > max_bytes):
            waiting[key] = state  # complete: ready at the next look
            in_flight.append(ctime)
        else:
            ready.append(path)
            handled[key] = ctime
            size += stat.st_size
    mark = max(cursor.mark_ns, min([*in_flight, scanned_at_ns - RECENT_NS]))
    deferred = sum(1 for key in waiting if cursor.waiting.get(key) == waiting[key])
    return Plan(
        ready=ready,
        cursor=InboxCursor(mark, {k: c for k, c in handled.items() if c >= mark}, waiting),
        waiting=len(waiting) - deferred,
        deferred=deferred,
    )
