"""Which inbox uploads are ready to ingest, remembered in a cursor that stays small.

An inbox is a folder or an S3 prefix; either is listed as candidates (`folder_candidates` here,
the S3 listing in resources/inbox.py), and one `plan` decides for both.
- New: an upload that changed (a file's ctime, an object's LastModified) at or after the cursor's
  mark and was not handled since. ctime, not mtime: a file moved or copied in with an old mtime
  still counts as new; a file rewritten in place, or an object overwritten, is new again.
- Complete: its state (a file's size and mtime) is the same at two looks, or it is known complete:
  a file whose `.sha256` sidecar is there (an uploader that writes the sidecar last marks the
  upload complete), or an S3 object (visible only once its upload finished).
- Bounded: at most `max_files` uploads and `max_bytes` bytes ingested a tick (a file larger than
  that alone, so it is not held back forever); uploads of `large_bytes` or more are handed to a
  run instead, whose time is not bounded by the sensor's; only the oldest `max_files *
  LOOKS_PER_READY` new uploads are looked at; the rest waits for the next tick.
- Small: the mark moves up to the oldest upload still in flight, but never closer than `recent_ns`
  to the scan (an upload that lands while the inbox is listed, in the same clock tick as one
  handled, or an S3 object whose LastModified is the start of a long upload, must still count as
  new); the cursor keeps only what was handled at or after the mark and what waits for a second
  look, whatever the inbox holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from media_assets.lib.core.identity import sidecar_path
from media_assets.lib.media.ingest import discover

RECENT_NS = 30 * 10**9  # one tick: also covers coarse file-system clocks and a little clock skew
S3_RECENT_NS = 15 * 60 * 10**9  # an S3 object's LastModified is when its (multipart) upload began
LOOKS_PER_READY = 5  # new files looked at per tick, per file that may be ingested: bounds the cursor


@dataclass(frozen=True)
class InboxCursor:
    mark_ns: int = 0  # every file whose ctime is before this was handled
    # name -> [changed_ns, state] of the uploads handled at or after the mark (the state too: an S3
    # key overwritten within the second it was written keeps its LastModified, not its ETag)
    handled: dict[str, list] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # name -> state at its first look

    def to_json(self) -> str:
        return json.dumps({"mark_ns": self.mark_ns, "handled": self.handled, "waiting": self.waiting}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> InboxCursor:
        return cls(**json.loads(text)) if text else cls()


@dataclass(frozen=True)
class Candidate:
    name: str  # a file's path, or an object's key
    changed_ns: int  # a file's ctime, an object's LastModified
    size: int
    state: str  # what must not change between two looks
    complete: bool = False  # known complete without a second look


@dataclass(frozen=True)
class Plan:
    ready: list[Candidate]  # ingest these now
    large: list[Candidate]  # ingest these in a run each
    cursor: InboxCursor  # to store once they are ingested or their runs requested
    waiting: int  # uploads seen once, to be looked at again
    deferred: int  # complete uploads left for the next tick by the bounds


def folder_candidates(inbox: Path) -> list[Candidate]:
    """Every file under the inbox folder (sidecars excluded), from its lstat."""
    if not inbox.is_dir():
        return []
    found = []
    for path, _ in discover([inbox]):
        stat = path.lstat()
        state = f"{stat.st_size}:{stat.st_mtime_ns}"
        found.append(Candidate(str(path), stat.st_ctime_ns, stat.st_size, state, sidecar_path(path).is_file()))
    return found


def plan(
    candidates: list[Candidate],
    cursor: InboxCursor,
    max_files: int,
    max_bytes: int,
    scanned_at_ns: int,
    large_bytes: int | None = None,
    recent_ns: int = RECENT_NS,
) -> Plan:
    """What to ingest now, from `candidates` as listed by a scan that started at `scanned_at_ns`."""
    new = sorted(
        (c.changed_ns, c.name, c)
        for c in candidates
        if c.changed_ns >= cursor.mark_ns and cursor.handled.get(c.name) != [c.changed_ns, c.state]
    )
    ready: list[Candidate] = []
    large: list[Candidate] = []
    handled = dict(cursor.handled)
    waiting: dict[str, str] = {}
    looked_at = new[: max_files * LOOKS_PER_READY]  # the oldest; the rest are looked at in later ticks
    in_flight = [changed for changed, *_ in new[len(looked_at) : len(looked_at) + 1]]  # not handled
    size = 0
    for changed, name, candidate in looked_at:
        is_large = large_bytes is not None and candidate.size >= large_bytes
        if cursor.waiting.get(name) != candidate.state and not candidate.complete:
            waiting[name] = candidate.state
            in_flight.append(changed)
        elif len(ready) + len(large) >= max_files or (not is_large and ready and size + candidate.size > max_bytes):
            waiting[name] = candidate.state  # complete: ready at the next look
            in_flight.append(changed)
        else:
            (large if is_large else ready).append(candidate)
            handled[name] = [changed, candidate.state]
            size += 0 if is_large else candidate.size
    mark = max(cursor.mark_ns, min([*in_flight, scanned_at_ns - recent_ns]))
    deferred = sum(1 for name in waiting if cursor.waiting.get(name) == waiting[name])
    return Plan(
        ready=ready,
        large=large,
        cursor=InboxCursor(mark, {k: v for k, v in handled.items() if v[0] >= mark}, waiting),
        waiting=len(waiting) - deferred,
        deferred=deferred,
    )
