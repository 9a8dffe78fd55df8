"""The `media-lake` command: demo, ingest, materialize, run, launch, sql, dlq, metrics."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import uuid
from pathlib import Path

import dagster as dg

from media_assets import episode_runs, remote, run_liveness
from media_assets.instance import get_instance, runs_at_once
from media_assets.lib.core import catalog, dead_letters
from media_assets.lib.media import ingest as lake_ingest
from media_assets.observability import server as metrics_server
from media_assets.progress import EpisodeProgress
from media_assets.resources import InboxResource, LakeResource, MediaResource

DEMO_INBOX = Path("demo_inbox")


def ingest(paths: list[Path], out=sys.stdout, source_of=lake_ingest.as_text) -> list[lake_ingest.Outcome]:
    """Validate and register inputs; one JSON line per input."""
    instance = get_instance()
    definitions = episode_runs.load_definitions()
    media: MediaResource = definitions.resources["media"]

    def register(episode_ids: list[str]) -> None:
        instance.add_dynamic_partitions("episodes", episode_ids)

    outcomes = lake_ingest.ingest(
        paths, episode_runs.lake_of(definitions), media.settings().limits, register, source_of
    )
    for outcome in outcomes:
        print(outcome.to_json(), file=out, flush=True)
    return outcomes


def materialize(episode_ids: list[str] | None, select: list[str] | None, out=sys.stdout, err=sys.stderr) -> bool:
    """One in-process run per episode (each shows in the UI), as many at once as the run queue
    allows (media_assets/episode_runs.py), then the catalog; one JSON line per episode, in the
    order asked; on a terminal, a progress bar on `err`.

    Runs left STARTED by a process that died are cleaned up first. Returns True when every
    episode ended materialized or dead-lettered.
    """
    instance = get_instance()
    definitions = episode_runs.load_definitions()
    episode_assets, catalog_asset = episode_runs.split_assets(definitions)
    known = set(instance.get_dynamic_partitions("episodes"))
    targets = sorted(known) if episode_ids is None else list(dict.fromkeys(episode_ids))  # each once
    unknown = sorted(set(targets) - known)
    if unknown:
        raise SystemExit(f"unknown episode(s): {', '.join(unknown)} (ingest them first)")
    selection = [s for s in (select or [a.key.to_user_string() for a in episode_assets]) if s != "catalog"]
    lake = episode_runs.lake_of(definitions)
    episode_runs.reap_dead_runs(instance, lake, err)
    episodes_to_run = targets if selection else []  # `--select catalog` alone refreshes only the catalog
    batch = {episode_runs.TAG_BATCH: uuid.uuid4().hex}
    lines: dict[str, dict] = {}
    printed = 0

    def ended(episode_id: str, run_id: str | None, problem: str | None) -> None:
        nonlocal printed
        if problem:
            print(f"media-lake: {episode_id}: {problem}", file=err, flush=True)
            episode_runs.reap_dead_runs(instance, lake, err)  # the run of a worker that died
        lines[episode_id] = episode_line(instance, lake, batch, episode_id, run_id, problem)
        progress.finished(episode_id)
        while printed < len(episodes_to_run) and episodes_to_run[printed] in lines:
            progress.emit(json.dumps(lines[episodes_to_run[printed]]), out)
            printed += 1

    with EpisodeProgress(instance, batch, episodes_to_run, len(selection), err) as progress:
        episode_runs.run_batch(episodes_to_run, selection, batch, runs_at_once(instance), ended)
    episode_runs.materialize(
        definitions,
        [*episode_assets, catalog_asset],
        [catalog_asset.key],
        instance=instance,
        tags=run_liveness.owner_tags(),
    )
    return all(line["status"] == "materialized" or line["dead_lettered"] for line in lines.values())


def episode_line(
    instance: dg.DagsterInstance, lake, batch: dict, episode_id: str, run_id: str | None, problem: str | None
) -> dict:
    """What `materialize` says of an episode's run (`run_id`, or when its worker could not tell, the
    episode's run in `batch`): its status, failed steps, and whether the failure is dead-lettered.
    An episode whose run never started is dead-lettered here, so that every episode is accounted for."""
    if run_id:
        runs = [instance.get_run_by_id(run_id)]
    else:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={**batch, episode_runs.TAG_EPISODE: episode_id}), limit=1)
    if not runs:
        dead_letters.dead_letter(
            lake,
            stage=dead_letters.RUN_STAGE,
            subject=episode_id,
            episode_id=episode_id,
            error=run_liveness.ProcessDied(f"{episode_id} was not run: {problem}"),
            attempts=1,
            payload={"episode_id": episode_id, "asset": dead_letters.RUN_STAGE},
        )
        return {"episode_id": episode_id, "run_id": None, "status": "failed", "failed_steps": [], "dead_lettered": True}
    run = runs[0]
    success = run.status == dg.DagsterRunStatus.SUCCESS
    if success:
        dead_letters.resolve(lake, dead_letters.RUN_STAGE, episode_id)  # a run that failed outside a stage
    failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return {
        "episode_id": episode_id,
        "run_id": run.run_id,
        "status": "materialized" if success else "failed",
        "failed_steps": sorted({event.step_key for event in failures}),
        "dead_lettered": not success and any(r["run_id"] == run.run_id for r in dead_letters.list_records(lake)),
    }


def launch(url: str, episode_ids: list[str], timeout: float, out=sys.stdout) -> bool:
    """Launch episode runs on the webserver at `url` and wait for them; one JSON line per episode.
    True when every run succeeded."""
    client = remote.client_for(url)
    run_ids = remote.launch(client, episode_ids)
    statuses = remote.wait(client, run_ids, timeout)
    for episode_id, run_id in run_ids.items():
        line = {"episode_id": episode_id, "run_id": run_id, "status": statuses[episode_id].value}
        print(json.dumps(line), file=out, flush=True)
    return all(status == dg.DagsterRunStatus.SUCCESS for status in statuses.values())


def sql(query: str, fmt: str = "table", out=sys.stdout) -> None:
    lake = LakeResource.from_env()
    con = catalog.connect(lake.store(), fs=lake.filesystem())
    relation = con.sql(query)
    if relation is None:
        return
    columns, rows = relation.columns, relation.fetchall()
    if fmt == "json":
        print(json.dumps([dict(zip(columns, row)) for row in rows], default=str, ensure_ascii=False), file=out)
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print(format_table(columns, rows), file=out)


def format_table(columns: list[str], rows: list[tuple]) -> str:
    def text(value) -> str:
        if isinstance(value, float):
            return f"{value:.2f}"
        return "" if value is None else str(value)

    cells = [[text(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: " | ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join(
        [
            line(columns),
            "-+-".join("-" * w for w in widths),
            *map(line, cells),
            f"({len(rows)} row{'s' if len(rows) != 1 else ''})",
        ]
    )


def dlq(action: str, record_id: str | None = None, stage: str | None = None, out=sys.stdout) -> bool:
    """list, show one record, or replay: one record, the open records of a stage, or all open ones."""
    lake = LakeResource.from_env().store()
    if action == "list":
        records = dead_letters.list_records(lake)
        print(
            format_table(
                ["record_id", "stage", "reason", "attempts", "timestamp", "resolved_at", "subject"],
                [
                    (
                        r["record_id"],
                        r["stage"],
                        r["reason"],
                        r["attempts"],
                        r["timestamp"],
                        r.get("resolved_at"),
                        r["subject"],
                    )
                    for r in records
                ],
            ),
            file=out,
        )
        return True
    if action == "show":
        print(json.dumps(dead_letters.get_record(lake, record_id), indent=2, ensure_ascii=False), file=out)
        return True
    if record_id:
        records = [dead_letters.get_record(lake, record_id)]
    else:
        records = [r for r in dead_letters.list_records(lake, open_only=True) if stage in (None, r["stage"])]
    return replay(records, out)


def replay(records: list[dict], out=sys.stdout) -> bool:
    """Ingest again the uploads of dead-letter records (then run the episodes they register, as
    `media-lake run` does), and materialize again the episodes of the others; a stage that
    succeeds resolves its record. True when every one ended accounted for."""
    uploads = [r["payload"]["path"] for r in records if r["stage"] == "ingest"]
    episode_ids = {r["episode_id"] for r in records if r["stage"] != "ingest" and r["episode_id"]}
    accounted = True
    if uploads:
        with InboxResource.from_env().fetched(uploads) as (paths, source_of):  # s3:// uploads are fetched again
            outcomes = ingest(paths, out, source_of)
        accounted = all(o.status != "rejected" for o in outcomes)
        episode_ids |= {o.episode_id for o in outcomes if o.status == "registered"}
    if episode_ids:
        accounted &= materialize(sorted(episode_ids), None, out)
    return accounted


def demo(out=sys.stdout) -> bool:
    """Make sample episodes (plus one corrupt file), run everything, print a summary."""
    from media_assets.demo import samples

    inputs = samples.demo_episodes(DEMO_INBOX)
    samples.random_bytes(DEMO_INBOX / "corrupt_upload.wav")
    print(f"sample episodes in {DEMO_INBOX}/: {', '.join(p.name for p in inputs)} + corrupt_upload.wav", file=out)
    print("\n== ingest", file=out)
    ingest([DEMO_INBOX], out)
    print("\n== materialize", file=out)
    accounted = materialize(None, None, out)
    print("\n== summary (DuckDB over the lake)", file=out)
    sql(SUMMARY_SQL, "table", out)
    print("\n== who said what (first words of each speech episode)", file=out)
    sql(SPEAKERS_SQL, "table", out)
    print("\n== chapters (Podcasting 2.0 JSON, WebVTT and a chaptered MP3 in lake/media/distribution/)", file=out)
    sql(CHAPTERS_SQL, "table", out)
    print("\n== what each episode is about", file=out)
    sql(ABOUT_SQL, "table", out)
    print("\n== dead letters", file=out)
    dlq("list", None, out)
    return accounted


SUMMARY_SQL = """
SELECT e.original_name AS episode, e.container, round(e.duration_s, 1) AS seconds, e.has_video,
       round(l.input_i, 1) AS in_lufs, round(l.output_i, 1) AS out_lufs, round(l.output_tp, 1) AS out_dbtp,
       l.normalization_type AS mode, v.keyframe_count AS keyframes,
       (SELECT count(*) FROM media_metadata m WHERE m.episode_id = e.episode_id) AS tags,
       (SELECT count(*) FROM captions c WHERE c.episode_id = e.episode_id) AS captions,
       (SELECT count(*) FROM transcript_words w WHERE w.episode_id = e.episode_id) AS words,
       (SELECT count(DISTINCT speaker_id) FROM speaker_turns t WHERE t.episode_id = e.episode_id) AS speakers
FROM episodes e
LEFT JOIN loudness l USING (episode_id)
LEFT JOIN video_renditions v USING (episode_id)
ORDER BY e.original_name
"""

SPEAKERS_SQL = """
SELECT e.original_name AS episode, s.speaker_id, round(min(s.start_time), 1) AS first_s,
       round(sum(s.end_time - s.start_time), 1) AS talk_s,
       left(string_agg(s.text, ' ' ORDER BY s.start_time), 60) AS says
FROM transcript_segments s JOIN episodes e USING (episode_id)
GROUP BY ALL ORDER BY episode, first_s
"""


CHAPTERS_SQL = """
SELECT e.original_name AS episode, c.chapter_index AS n, round(c.start_time, 1) AS start_s,
       round(c.end_time, 1) AS end_s, c.title, c.boundary_reason, c.category_id AS category
FROM chapters c JOIN episodes e USING (episode_id)
WHERE c.sentence_count > 0
ORDER BY episode, n
"""

ABOUT_SQL = """
SELECT e.original_name AS episode,
       (SELECT category_name || ' ' || round(score, 2) FROM classifications k
        WHERE k.episode_id = e.episode_id AND rank = 1) AS top_category,
       (SELECT string_agg(keyword, ', ' ORDER BY rank) FROM keywords k
        WHERE k.episode_id = e.episode_id AND rank <= 5) AS keywords,
       (SELECT string_agg(entity || ' (' || label || ' ' || round(first_start_time, 1) || 's)', ', '
                          ORDER BY first_start_time)
        FROM entities n WHERE n.episode_id = e.episode_id AND label IN ('PERSON', 'ORG', 'GPE')) AS named
FROM episodes e
ORDER BY episode
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="media-lake", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="make sample episodes, run the whole graph, print a summary")
    p_ingest = commands.add_parser("ingest", help="validate and register files or folders")
    p_ingest.add_argument("paths", nargs="+", type=Path)
    p_mat = commands.add_parser("materialize", help="run the asset graph for episodes")
    which = p_mat.add_mutually_exclusive_group(required=True)
    which.add_argument("--episode", action="append", dest="episodes", metavar="ID")
    which.add_argument("--all", action="store_true")
    p_mat.add_argument("--select", action="append", metavar="ASSET")
    p_run = commands.add_parser("run", help="ingest, then materialize what was ingested")
    p_run.add_argument("paths", nargs="+", type=Path)
    p_launch = commands.add_parser("launch", help="run episodes on a running Dagster webserver (GraphQL API)")
    p_launch.add_argument("episodes", nargs="+", metavar="EPISODE_ID")
    p_launch.add_argument("--url", default="http://127.0.0.1:3000", help="the webserver (default: %(default)s)")
    p_launch.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for the runs to end")
    p_sql = commands.add_parser("sql", help="query the lake with DuckDB")
    p_sql.add_argument("query")
    p_sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p_dlq = commands.add_parser("dlq", help="inspect and replay dead-letter records")
    p_dlq.add_argument("action", choices=["list", "show", "replay"])
    p_dlq.add_argument("record_id", nargs="?")
    p_dlq.add_argument("--stage", help="replay: every open record of this stage")
    p_dlq.add_argument("--all", action="store_true", help="replay: every open record")
    p_metrics = commands.add_parser("metrics", help="serve Prometheus metrics of the instance and the lake")
    p_metrics.add_argument("action", choices=["serve"])
    p_metrics.add_argument("--port", type=int, default=metrics_server.DEFAULT_PORT, help="(default: %(default)s)")
    p_metrics.add_argument("--host", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.command == "dlq":
        batch = bool(args.stage) or args.all
        if args.action == "show" and not args.record_id:
            parser.error("dlq show needs a record id")
        if args.action == "replay" and bool(args.record_id) + bool(args.stage) + args.all != 1:
            parser.error("dlq replay needs one of: a record id, --stage STAGE, --all")
        if args.action != "replay" and batch:
            parser.error("--stage and --all go with dlq replay")
    try:
        if args.command == "demo":
            ok = demo()
        elif args.command == "ingest":
            ingest(args.paths)
            ok = True
        elif args.command == "materialize":
            ok = materialize(None if args.all else args.episodes, args.select)
        elif args.command == "run":
            outcomes = ingest(args.paths)
            episode_ids = sorted({o.episode_id for o in outcomes if o.episode_id})
            ok = materialize(episode_ids, None) if episode_ids else True
        elif args.command == "launch":
            ok = launch(args.url, args.episodes, args.timeout)
        elif args.command == "sql":
            sql(args.query, args.format)
            ok = True
        elif args.command == "metrics":
            metrics_server.serve(args.port, args.host)
            ok = True
        else:
            ok = dlq(args.action, args.record_id, args.stage)
    except KeyError as exc:
        print(f"media-lake: {exc.args[0]}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
