"""The episode runs of `media-lake materialize`: each an in-process Dagster run of one episode, as
many at once as the run queue lets the daemon start (`concurrency.runs.max_concurrent_runs` in
dagster.yaml, by default the core count): the CLI follows the daemon's limit (each has its own).

Runs go side by side in worker processes started from warm_runs' context (forked from the fork
server that imported torch, pyannote.audio, spaCy... once); each worker loads its models on its
first episode and keeps them for the next, and its libraries use its share of the cores
(warm_runs.share_cores). On 2 cores two single-threaded runs do more than one run with both
cores: Whisper gains 1.5x from a second thread, pyannote loses time with one, and the steps
between them use one core (figures in benchmarks/README.md). With one run at a time, the run
goes in this process, with the libraries' own thread counts.

A worker that dies (the OOM killer, kill -9) takes only its own episode: that run is cleaned up as
a dead run (failed, pool slots freed, dead-lettered), a new worker takes the next episode.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from multiprocessing import connection

import dagster as dg

from media_assets import run_liveness, warm_runs
from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.instance import get_instance
from media_assets.lib.core.lake import LakeStore
from media_assets.observability import logs

TAG_EPISODE = "media-lake/episode"
TAG_BATCH = "media-lake/batch"  # the `materialize` call a run belongs to
EPHEMERAL_JOB = "__ephemeral_asset_job__"  # dg.materialize's job name, kept for its runs
SLOT_WATCH_SECONDS = 2.0


def load_definitions() -> dg.Definitions:
    from media_assets.definitions import defs

    return defs()


def command_line_logs() -> dict:
    """Run config of the command line's runs: warnings and errors only (the command prints a line
    per episode), unless MEDIA_LAKE_LOG_LEVEL says otherwise."""
    return {"loggers": {"console": {"config": {"log_level": logs.default_level(fallback="WARNING")}}}}


def materialize(
    definitions: dg.Definitions, assets: list, selection, resources: dict | None = None, **execute
) -> dg.ExecuteInProcessResult:
    """`dg.materialize` with the code location's loggers (dg.materialize uses Dagster's defaults)
    and resources (or `resources`)."""
    job = dg.Definitions(
        jobs=[dg.define_asset_job(EPHEMERAL_JOB, selection=selection)],
        assets=assets,
        resources=definitions.resources if resources is None else resources,
        loggers=definitions.loggers,
    ).resolve_job_def(EPHEMERAL_JOB)
    return job.execute_in_process(run_config=command_line_logs(), **execute)


def lake_of(definitions: dg.Definitions) -> LakeStore:
    return definitions.resources["lake"].store()


def split_assets(definitions: dg.Definitions) -> tuple[list[dg.AssetsDefinition], dg.AssetsDefinition]:
    """The episode stage assets (their quality gates with them) and the catalog."""
    unique = {a.key: a for a in definitions.assets}
    episode_assets = [a for a in unique.values() if a.partitions_def is not None]
    return episode_assets, unique[dg.AssetKey("catalog")]


def reap_dead_runs(instance: dg.DagsterInstance, lake, err=sys.stderr) -> list[run_liveness.DeadRun]:
    """Fail, free and dead-letter runs whose process is gone, saying so on `err`."""
    reaped = run_liveness.reap_dead_runs(instance, lake, list(COMPUTE_CLASSES))
    for dead in reaped:
        print(f"media-lake: cleaned up: {dead.describe()}", file=err, flush=True)
    return reaped


def waiting_steps(instance: dg.DagsterInstance) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(pool, step) of each step of this process's runs that waits for a slot, with the
    (run id, step) holding that pool's slots."""
    mine = {
        r.run_id
        for r in instance.get_runs(
            filters=dg.RunsFilter(statuses=run_liveness.LIVE_STATUSES, tags=run_liveness.owner_tags())
        )
    }
    waiting = {}
    for pool in COMPUTE_CLASSES:
        info = instance.event_log_storage.get_concurrency_info(pool)
        for pending in info.pending_steps:
            if pending.run_id in mine and pending.assigned_timestamp is None:
                waiting[(pool, pending.step_key)] = [(s.run_id, s.step_key) for s in info.claimed_slots]
    return waiting


@contextmanager
def slot_watch(instance: dg.DagsterInstance, lake, err=sys.stderr):
    """While a run goes on: say which run holds the slot a step waits for (once per change), and
    clean up holders whose process died, so that a dead run never blocks this one."""
    stop = threading.Event()

    def watch() -> None:
        told: dict = {}
        while not stop.wait(SLOT_WATCH_SECONDS):
            try:
                waiting = waiting_steps(instance)
                if not waiting or reap_dead_runs(instance, lake, err):
                    continue
            except Exception as exc:  # e.g. SQLite busy: the run goes on, the next pass tries again
                print(f"media-lake: slot watch: {type(exc).__name__}: {exc}", file=err, flush=True)
                continue
            for (pool, step), holders in waiting.items():
                if told.get((pool, step)) != holders:
                    held_by = ", ".join(f"run {run_id} (step {key})" for run_id, key in holders) or "nobody yet"
                    print(
                        f"media-lake: {step} waits for a slot in pool {pool}, held by {held_by}", file=err, flush=True
                    )
                    told[(pool, step)] = holders

    watcher = threading.Thread(target=watch, name="slot-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def run_episode(
    episode_id: str, selection: list[str], tags: dict[str, str], environ: dict | None = None, cwd: str | None = None
) -> str:
    """One in-process run of the episode's `selection`; its run id. In a worker, `environ` and
    `cwd` are the caller's (the fork server's may be older)."""
    if environ is not None:
        os.environ.update(environ)
    if cwd is not None:
        os.chdir(cwd)
    with get_instance() as instance:
        definitions = load_definitions()
        episode_assets, _ = split_assets(definitions)
        with slot_watch(instance, lake_of(definitions), sys.stderr):
            result = materialize(
                definitions,
                episode_assets,
                selection,
                partition_key=episode_id,
                instance=instance,
                raise_on_error=False,
                tags={**tags, TAG_EPISODE: episode_id, **run_liveness.owner_tags()},
            )
    return result.run_id


def _serve(tasks: connection.Connection) -> None:
    """A worker: runs the episodes it is sent until it is sent None; answers ("ok", run id) or
    ("error", traceback) for each."""
    try:
        while (task := tasks.recv()) is not None:
            try:
                tasks.send(("ok", run_episode(*task)))
            except Exception:
                tasks.send(("error", traceback.format_exc()))
    except (KeyboardInterrupt, EOFError):
        pass  # Ctrl-C reaches the whole process group, or the caller is gone: it cleans up


class _Worker:
    def __init__(self, context):
        self.tasks, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs,), name="media-lake episode worker", daemon=True)
        self.process.start()
        theirs.close()
        self.episode: str | None = None

    def give(self, episode_id: str, selection: list[str], tags: dict[str, str]) -> bool:
        """Send it the episode; False when it is gone (it died while idle)."""
        try:
            self.tasks.send((episode_id, selection, tags, dict(os.environ), os.getcwd()))
        except OSError:
            return False
        self.episode = episode_id
        return True

    def answer(self) -> tuple[str, str]:
        """("ok", run id), ("error", traceback), or ("died", why) when the worker is gone."""
        try:
            return self.tasks.recv()
        except (EOFError, OSError):
            self.process.join()
            return "died", f"its worker process died (exit code {self.process.exitcode})"


def run_batch(
    episode_ids: list[str],
    selection: list[str],
    tags: dict[str, str],
    at_once: int,
    ended: Callable[[str, str | None, str | None], None],
) -> None:
    """Run each episode, `at_once` at a time; `ended(episode_id, run_id, problem)` as each ends:
    `problem` is None when its run ended (succeeded or failed), else why not (and `run_id` None)."""
    at_once = min(at_once, len(episode_ids))
    if at_once <= 1:
        for episode_id in episode_ids:
            ended(episode_id, run_episode(episode_id, selection, tags), None)
        return
    threads_before = os.environ.get(warm_runs.THREADS_ENV)
    warm_runs.share_cores(at_once)
    context = warm_runs.run_context()
    todo = deque(episode_ids)
    workers: list[_Worker] = []
    try:
        while todo or any(w.episode for w in workers):
            idle = [w for w in workers if w.episode is None]
            while todo and (idle or len(workers) < at_once):
                worker = idle.pop() if idle else _Worker(context)
                if worker.give(todo[0], selection, tags):
                    workers += [] if worker in workers else [worker]
                    todo.popleft()
                elif worker in workers:
                    workers.remove(worker)  # died while idle: a new worker takes the episode
                else:
                    ended(todo.popleft(), None, "no worker process could start")
            busy = {w.tasks: w for w in workers if w.episode}
            for ready in connection.wait(list(busy)):
                worker = busy[ready]
                outcome, detail = worker.answer()
                episode_id, worker.episode = worker.episode, None
                if outcome == "died":
                    workers.remove(worker)
                ended(episode_id, *((detail, None) if outcome == "ok" else (None, detail)))
    finally:  # on an error or Ctrl-C: runs cut short are cleaned up as dead runs by the next materialize
        for worker in workers:
            if worker.episode:
                worker.process.kill()
            else:
                try:
                    worker.tasks.send(None)
                except OSError:
                    pass
        for worker in workers:
            worker.process.join(timeout=30)
        if threads_before is None:
            os.environ.pop(warm_runs.THREADS_ENV, None)
        else:
            os.environ[warm_runs.THREADS_ENV] = threads_before
