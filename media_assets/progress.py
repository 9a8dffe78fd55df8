"""Progress of a long `media-lake materialize` or `run` on a terminal: episode n of N, the stage
running, steps done, elapsed time, as a rich progress bar on stderr. Shown only when stderr is a
terminal, so piped and logged output stays exactly one JSON line per episode on stdout."""

from __future__ import annotations

import datetime
import sys
import threading
from contextlib import contextmanager

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from media_assets import run_liveness

POLL_SECONDS = 0.5
STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}


def run_state(instance: dg.DagsterInstance, episode_id: str, since: datetime.datetime) -> tuple[int, str]:
    """(steps ended, what runs now) of this process's latest run of the episode since `since`."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            tags={"media-lake/episode": episode_id, **run_liveness.owner_tags()}, created_after=since
        ),
        limit=1,
    )
    if not runs:
        return 0, "starting"
    started, ended = [], set()
    for record in instance.all_logs(runs[0].run_id, of_type=STEP_EVENTS):
        event = record.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            started.append(event.step_key)
        else:
            ended.add(event.step_key)
    running = [step for step in started if step not in ended]
    return len(ended), ", ".join(running) or (f"{started[-1]} done" if started else "starting")


class EpisodeProgress:
    """`with EpisodeProgress(...) as progress:` then `with progress.episode(n, id):` per episode."""

    def __init__(self, instance: dg.DagsterInstance, episode_count: int, steps_per_episode: int, err=sys.stderr):
        self.instance = instance
        self.episode_count = episode_count
        self.steps = steps_per_episode
        console = Console(file=err)
        self.bar = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps  {task.fields[stage]}"),
                TimeElapsedColumn(),
                console=console,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            if console.is_terminal
            else None
        )

    def __enter__(self) -> EpisodeProgress:
        if self.bar:
            self.bar.start()
            self.task = self.bar.add_task("", total=self.episode_count * self.steps, stage="")
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar:
            self.bar.stop()

    def emit(self, line: str, out) -> None:
        """Print a result line to `out`; above the bar when both share the terminal."""
        if self.bar and out.isatty():
            self.bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=out, flush=True)

    @contextmanager
    def episode(self, number: int, episode_id: str):
        """Follow the run of the `number`th episode while the body runs it."""
        if not self.bar:
            yield
            return
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
        done_before = (number - 1) * self.steps
        stop = threading.Event()

        def show() -> None:
            try:
                ended, stage = run_state(self.instance, episode_id, since)
            except Exception:  # e.g. SQLite busy: the bar waits for the next poll, the run goes on
                return
            self.bar.update(
                self.task,
                description=f"episode {number} of {self.episode_count}  {episode_id}",
                completed=done_before + ended,
                stage=stage,
            )

        def follow() -> None:
            while not stop.wait(POLL_SECONDS):
                show()

        show()
        follower = threading.Thread(target=follow, name="progress", daemon=True)
        follower.start()
        try:
            yield
        finally:
            stop.set()
            follower.join()
            show()
            self.bar.refresh()
