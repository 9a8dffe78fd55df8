"""Progress of a long `media-lake materialize` or `run` on a terminal: episodes ended of N, steps
ended over all episodes, the stage each running episode is in, elapsed time, as a rich progress bar
on stderr. Shown only when stderr is a terminal, so piped and logged output stays exactly one JSON
line per episode on stdout."""

from __future__ import annotations

import sys
import threading

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from media_assets.episode_runs import TAG_EPISODE

POLL_SECONDS = 0.5
BAR_WIDTH = 20
FIXED_COLUMNS_WIDTH = 64  # description, bar, steps n/N, elapsed time: what the stage text leaves them
STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}


def run_state(instance: dg.DagsterInstance, run_id: str) -> tuple[int, str]:
    """(steps ended, what runs now) of a run."""
    started, ended = [], set()
    for record in instance.all_logs(run_id, of_type=STEP_EVENTS):
        event = record.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            started.append(event.step_key)
        else:
            ended.add(event.step_key)
    running = [step for step in started if step not in ended]
    return len(ended), ", ".join(running) or (f"{started[-1]} done" if started else "starting")


class EpisodeProgress:
    """`with EpisodeProgress(...) as progress:` around the runs of `batch` (their tags), then
    `progress.finished(id)` as each episode ends and `progress.emit(line, out)` for its result."""

    def __init__(
        self, instance: dg.DagsterInstance, batch: dict, episode_ids: list[str], steps_per_episode: int, err=sys.stderr
    ):
        self.instance = instance
        self.batch = batch
        self.episode_ids = episode_ids
        self.steps = steps_per_episode
        self.ended: list[str] = []
        self.states: dict[str, tuple[int, str]] = {}  # episode: run_state, final for those ended
        self.settled: set[str] = set()
        self.stop = threading.Event()
        console = Console(file=err)
        self.bar = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=BAR_WIDTH),
                MofNCompleteColumn(),
                TextColumn("steps"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stage]}"),
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
            self.task = self.bar.add_task("", total=len(self.episode_ids) * self.steps, stage="")
            self.show()
            self.follower = threading.Thread(target=self.follow, name="progress", daemon=True)
            self.follower.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar:
            self.stop.set()
            self.follower.join()
            self.show()
            self.bar.refresh()
            self.bar.stop()

    def finished(self, episode_id: str) -> None:
        self.ended.append(episode_id)

    def emit(self, line: str, out) -> None:
        """Print a result line to `out`; above the bar when both share the terminal."""
        if self.bar and out.isatty():
            self.bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=out, flush=True)

    def follow(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            self.show()

    def show(self) -> None:
        ended = list(self.ended)
        try:
            for run in self.instance.get_runs(filters=dg.RunsFilter(tags=self.batch)):
                episode = run.tags[TAG_EPISODE]
                if episode not in self.settled:
                    self.states[episode] = run_state(self.instance, run.run_id)
                    if episode in ended:
                        self.settled.add(episode)
        except Exception:  # e.g. SQLite busy: the bar waits for the next poll, the runs go on
            return
        running = [f"{episode}: {stage}" for episode, (_, stage) in self.states.items() if episode not in ended]
        last = f"{ended[-1]}: {self.states.get(ended[-1], (0, 'ended'))[1]}" if ended else ""
        stage, room = "; ".join(running) or last, max(12, self.bar.console.width - FIXED_COLUMNS_WIDTH)
        self.bar.update(
            self.task,
            description=f"{len(ended)} of {len(self.episode_ids)} episodes",
            completed=sum(steps for steps, _ in self.states.values()),
            stage=stage if len(stage) <= room else stage[: room - 1] + "…",  # a narrow terminal keeps the counts
        )
