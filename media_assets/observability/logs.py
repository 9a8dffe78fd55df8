"""Structured logs: every line a run logs (Dagster's events and the project's own messages) is one
JSON object on stderr, or a readable line when stderr is a terminal.

`structured_console` is a Dagster logger (it replaces Dagster's default `console` logger in every
job of the code location and in the command line's runs): structlog renders each record Dagster
hands it, with the run id, the stage (step key), the episode (partition) and, for Dagster's
events, the event type and the step's duration. The project's own code logs through
`stage_logger`, a structlog logger whose fields travel to Dagster's log manager as the record's
extra, so the same message reaches the UI's event log and the JSON line carries the fields.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
from collections.abc import Mapping

import dagster as dg
import structlog
from dagster._core.log_manager import DagsterLogRecordMetadata

from media_assets.observability.tracing import span_events

FORMAT_ENV = "MEDIA_LAKE_LOG_FORMAT"  # json | console | auto (console on a terminal, else json)
LEVEL_ENV = "MEDIA_LAKE_LOG_LEVEL"
FORMATS = ("auto", "json", "console")
# The fields of every line the project's stage code logs; Dagster's own lines carry what applies.
STAGE_KEYS = ("episode_id", "stage", "run_id", "attempt")
EXTRA = "media_lake"  # the log record attribute that carries a stage_logger's fields
PARTITION_TAG = "dagster/partition"
PROJECT_LOGGER = "media_assets"  # the stdlib loggers of the project's modules (instance: managed_python_loggers)


def log_format(chosen: str | None = None, stream=sys.stderr, environ: Mapping[str, str] = os.environ) -> str:
    """json or console: `chosen`, else MEDIA_LAKE_LOG_FORMAT, else auto (console on a terminal)."""
    chosen = (chosen or environ.get(FORMAT_ENV) or "auto").lower()
    if chosen not in FORMATS:
        raise ValueError(f"log format {chosen!r} ({FORMAT_ENV} or the logger's config): choose one of {FORMATS}")
    if chosen == "auto":
        return "console" if stream.isatty() else "json"
    return chosen


def dagster_fields(_, __, event_dict: dict) -> dict:
    """structlog processor: a Dagster log record's message and context as fields."""
    record: logging.LogRecord = event_dict["_record"]
    meta: DagsterLogRecordMetadata | None = getattr(record, "dagster_meta", None)
    fields = dict(getattr(record, EXTRA, {}))
    if meta is not None:
        event_dict["event"] = fields.pop("event", meta["orig_message"])
        tags = meta["job_tags"] or {}
        context = {
            "run_id": meta["run_id"],
            "job": meta["job_name"],
            "stage": meta["step_key"],
            "episode_id": tags.get(PARTITION_TAG),
        }
        fields = {**{k: v for k, v in context.items() if v is not None}, **fields}
        if event := meta["dagster_event"]:
            fields["dagster_event"] = event.event_type_value
            if (duration_ms := getattr(event.event_specific_data, "duration_ms", None)) is not None:
                fields["seconds"] = round(duration_ms / 1000, 3)
            if error := getattr(event.event_specific_data, "error", None):  # a step or run failure
                fields.setdefault("error_type", error.cls_name)
                fields.setdefault("error", error.to_string())
    event_dict.update(fields)
    event_dict["timestamp"] = datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat()
    event_dict["level"] = record.levelname.lower()
    return event_dict


def formatter(fmt: str) -> structlog.stdlib.ProcessorFormatter:
    renderer = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), sort_keys=True)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[dagster_fields, structlog.processors.format_exc_info],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )


def default_level(environ: Mapping[str, str] = os.environ, fallback: str = "INFO") -> str:
    return environ.get(LEVEL_ENV, fallback).upper()


def level_number(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ValueError(f"log level {name!r} ({LEVEL_ENV} or the logger's config): choose DEBUG, INFO, WARNING...")
    return level


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, is_required=False, description=f"default: ${LEVEL_ENV}, else INFO"),
        "format": dg.Field(str, is_required=False, description=f"json, console or auto (default: ${FORMAT_ENV})"),
    },
    description="JSON lines on stderr (readable lines on a terminal), with run, stage and episode fields.",
)
def structured_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    """A misspelt format or level is logged as a warning and replaced by the default: logging
    settings never stop a run."""
    config, problems = init_context.logger_config, []
    try:
        fmt = log_format(config.get("format"))
    except ValueError as exc:
        fmt = log_format("auto")
        problems.append(str(exc))
    try:
        level = level_number(config.get("log_level") or default_level())
    except ValueError as exc:
        level = logging.INFO
        problems.append(str(exc))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    logger = logging.Logger("media_lake", level=level)
    logger.addHandler(handler)
    logging.getLogger(PROJECT_LOGGER).setLevel(level)  # its lines reach this logger (managed_python_loggers)
    for problem in problems:
        logger.warning(f"{problem}; using the default")
    return logger


LOGGERS = {"console": structured_console}


def log_this_process() -> None:
    """The project's stdlib log lines as the runs' are (JSON, or readable on a terminal), for a
    process that runs no job (`metrics serve`): in runs, the instance's managed_python_loggers
    hands them to `structured_console`, and this handler would print each line twice."""
    project = logging.getLogger(PROJECT_LOGGER)
    if not project.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter(log_format()))
        project.addHandler(handler)
    project.setLevel(level_number(default_level()))


def _to_dagster(_, __, event_dict: dict):
    """structlog's last processor for `stage_logger`: the message for Dagster's log manager (the
    UI's event log: the event and the fields the UI does not show by itself), the fields as the
    record's extra (read back by `dagster_fields`)."""
    details = " ".join(f"{key}={value}" for key, value in event_dict.items() if key not in ("event", *STAGE_KEYS))
    return (f"{event_dict['event']} {details}".rstrip(),), {"extra": {EXTRA: event_dict}}


def stage_logger(dagster_log: logging.Logger, **fields) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger bound to `fields` (STAGE_KEYS and more) that logs through Dagster's
    `context.log`, each line also an event of the stage's span when tracing is on."""
    return structlog.wrap_logger(dagster_log, processors=[span_events, _to_dagster], **fields)
