"""Which inbox files are ready: complete uploads only, each once, in bounded ticks, with a cursor
that stays small. Real files; the scan time is given, so verdicts do not depend on the clock."""

from __future__ import annotations

import os
import time
from pathlib import Path

from media_assets.lib.media.inbox import RECENT_NS, S3_RECENT_NS, Candidate, InboxCursor, folder_candidates, plan

LATER = RECENT_NS * 2  # a scan this long after the files landed


def tick(
    inbox: Path, cursor: InboxCursor, max_files: int = 20, max_bytes: int = 2**30, at: int | None = None, **bounds
):
    result = plan(
        folder_candidates(inbox), cursor, max_files, max_bytes, at if at is not None else time.time_ns(), **bounds
    )
    return result, InboxCursor.from_json(result.cursor.to_json())  # the cursor goes through JSON, as in Dagster


def names(paths) -> list[str]:
    return sorted(Path(c.name).name for c in paths)


def test_a_file_is_ready_at_its_second_unchanged_look_and_only_once(tmp_path) -> None:
    (tmp_path / "a.wav").write_bytes(b"a" * 100)
    first, cursor = tick(tmp_path, InboxCursor())
    assert first.ready == [] and first.waiting == 1
    second, cursor = tick(tmp_path, cursor)
    assert names(second.ready) == ["a.wav"]
    third, cursor = tick(tmp_path, cursor)
    assert third.ready == [] and third.waiting == 0
    assert list(cursor.handled) == [str(tmp_path / "a.wav")] and cursor.waiting == {}  # recent: kept
    much_later, cursor = tick(tmp_path, cursor, at=time.time_ns() + LATER)
    assert much_later.ready == [] and cursor.handled == {} and cursor.waiting == {}


def test_a_file_still_being_written_waits_until_it_stops_changing(tmp_path) -> None:
    upload = tmp_path / "big.mp4"
    upload.write_bytes(b"x" * 10)
    cursor = InboxCursor()
    for size in (20, 30, 40):
        result, cursor = tick(tmp_path, cursor)
        assert result.ready == []
        with upload.open("ab") as out:
            out.write(b"x" * 10)
        assert upload.stat().st_size == size
    _, cursor = tick(tmp_path, cursor)
    done, cursor = tick(tmp_path, cursor)
    assert names(done.ready) == ["big.mp4"]


def test_a_sidecar_marks_an_upload_complete_at_once(tmp_path) -> None:
    (tmp_path / "a.wav").write_bytes(b"a" * 100)
    (tmp_path / "a.wav.sha256").write_text("0" * 64)
    result, _ = tick(tmp_path, InboxCursor())
    assert names(result.ready) == ["a.wav"]


def test_a_file_moved_in_with_an_old_mtime_is_still_new(tmp_path) -> None:
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (inbox / "first.wav").write_bytes(b"1")
    _, cursor = tick(inbox, InboxCursor())
    _, cursor = tick(inbox, cursor)
    old = outside / "old.wav"
    old.write_bytes(b"2")
    os.utime(old, ns=(10**18, 10**18))  # 2001
    os.rename(old, inbox / "old.wav")  # a move keeps mtime; ctime is now
    _, cursor = tick(inbox, cursor)
    result, _ = tick(inbox, cursor)
    assert names(result.ready) == ["old.wav"]


def test_a_file_rewritten_in_place_is_new_again(tmp_path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"first")
    _, cursor = tick(tmp_path, InboxCursor())
    _, cursor = tick(tmp_path, cursor)
    path.write_bytes(b"second version")
    _, cursor = tick(tmp_path, cursor)
    result, _ = tick(tmp_path, cursor)
    assert names(result.ready) == ["a.wav"]


def test_files_arriving_at_the_scan_are_not_lost_behind_the_mark(tmp_path) -> None:
    """A scan right after the files landed: the mark stays behind them, and a file created in the
    same instant as a handled one (same ctime tick) is still new."""
    (tmp_path / "a.wav").write_bytes(b"a")
    now = time.time_ns()
    _, cursor = tick(tmp_path, InboxCursor(), at=now)
    result, cursor = tick(tmp_path, cursor, at=now)
    assert names(result.ready) == ["a.wav"] and cursor.mark_ns <= (tmp_path / "a.wav").stat().st_ctime_ns
    (tmp_path / "b.wav").write_bytes(b"b")
    _, cursor = tick(tmp_path, cursor, at=now)
    result, cursor = tick(tmp_path, cursor, at=now)
    assert names(result.ready) == ["b.wav"]


def test_ticks_are_bounded_in_files_and_bytes_and_nothing_is_dropped(tmp_path) -> None:
    for n in range(7):
        (tmp_path / f"{n}.wav").write_bytes(b"x" * 100)
    (tmp_path / "huge.mp4").write_bytes(b"x" * 5000)
    cursor, batches = InboxCursor(), []
    for _ in range(8):
        result, cursor = tick(tmp_path, cursor, max_files=3, max_bytes=1000)
        batches.append(names(result.ready))
    ingested = [name for batch in batches for name in batch]
    assert sorted(ingested) == sorted([f"{n}.wav" for n in range(7)] + ["huge.mp4"])  # each exactly once
    assert all(len(batch) <= 3 for batch in batches)
    assert ["huge.mp4"] in batches  # larger than a tick's bytes: alone


def test_the_cursor_stays_small_whatever_the_inbox_holds(tmp_path) -> None:
    """1,000 files at once, ticks a tick apart: the cursor holds at most the files looked at in one
    tick, never the inbox."""
    for n in range(1000):
        (tmp_path / f"{n:04}.wav").write_bytes(b"x")
    cursor, ingested, start = InboxCursor(), 0, time.time_ns()
    for k in range(60):
        result, cursor = tick(tmp_path, cursor, max_files=50, at=start + k * RECENT_NS)
        ingested += len(result.ready)
        assert len(cursor.waiting) <= 5 * 50 and len(cursor.handled) <= 50
    assert ingested == 1000
    assert len(cursor.to_json()) < 100  # all handled long ago: just the mark


def test_large_uploads_go_to_runs_and_do_not_use_the_ticks_bytes(tmp_path) -> None:
    for n in range(3):
        (tmp_path / f"{n}.wav").write_bytes(b"x" * 400)
    (tmp_path / "20GB.mov").write_bytes(b"x" * 5000)  # stands for an upload too big to hash in a tick
    _, cursor = tick(tmp_path, InboxCursor(), max_bytes=1000, large_bytes=4000)
    result, cursor = tick(tmp_path, cursor, max_bytes=1000, large_bytes=4000)
    assert names(result.large) == ["20GB.mov"]
    assert names(result.ready) == ["0.wav", "1.wav"]  # the bytes bound counts only what the tick hashes
    again, _ = tick(tmp_path, cursor, max_bytes=1000, large_bytes=4000)
    assert names(again.ready) == ["2.wav"] and again.large == []


def object_listing(objects: dict[str, tuple[int, str]]) -> list[Candidate]:
    """Candidates as an S3 listing gives them: key -> (LastModified in s, ETag); complete at once."""
    return [Candidate(key, seconds * 10**9, 100, etag, complete=True) for key, (seconds, etag) in objects.items()]


def test_s3_objects_are_taken_at_first_sight_and_an_overwritten_key_is_new_again() -> None:
    """The dagster issue 22892 pitfall: a key modified after it was handled must come back, and an
    object whose LastModified is older than the newest handled one (a long multipart upload that
    finished late) must not be lost behind the mark."""
    now = 10_000
    listing = {"in/a.wav": (now - 5, "e1"), "in/b.wav": (now - 4, "e2")}
    first = plan(object_listing(listing), InboxCursor(), 20, 2**30, now * 10**9, recent_ns=S3_RECENT_NS)
    assert sorted(c.name for c in first.ready) == ["in/a.wav", "in/b.wav"]
    listing["in/a.wav"] = (now + 10, "e3")  # overwritten
    listing["in/late.wav"] = (now - 60, "e4")  # started before the others, visible only now
    second = plan(object_listing(listing), first.cursor, 20, 2**30, (now + 11) * 10**9, recent_ns=S3_RECENT_NS)
    assert sorted(c.name for c in second.ready) == ["in/a.wav", "in/late.wav"]
    third = plan(object_listing(listing), second.cursor, 20, 2**30, (now + 12) * 10**9, recent_ns=S3_RECENT_NS)
    assert third.ready == []
    listing["in/b.wav"] = (now - 4, "e5")  # overwritten within the same second: only the ETag tells
    fourth = plan(object_listing(listing), third.cursor, 20, 2**30, (now + 13) * 10**9, recent_ns=S3_RECENT_NS)
    assert [c.name for c in fourth.ready] == ["in/b.wav"]
