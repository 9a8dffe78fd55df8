"""The Dagster side of a stage declaration (lib/core/stage.py): the episode partitions, compute
routing, retries, the dead-letter path and the quality gates, built the same way for every stage."""

import time

import dagster as dg

from media_assets.lib import summaries
from media_assets.lib.core import quality, tables
from media_assets.lib.core.dead_letters import dead_letter, resolve
from media_assets.lib.core.errors import QualityGateFailed, failure_class, failure_reason, is_transient
from media_assets.lib.core.lake import MEDIA_PREFIX, document_key
from media_assets.lib.core.stage import Stage, read_document
from media_assets.lib.stages import STAGES
from media_assets.observability import ffmpeg_progress, tracing
from media_assets.observability.logs import stage_logger
from media_assets.run_liveness import step_worker, tag_run_owner

episodes = dg.DynamicPartitionsDefinition(name="episodes")

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# One compute class per asset; each becomes a local pool, a Celery queue and a k8s pod spec: the
# `dagster-k8s/config` of its step pods (k8s_job_executor), also the pod of its Celery workers
# (k8s/workers.yaml). Security context and scratch volumes are set for every pod in k8s/values.yaml.
STEP_POD_CONFIG = {
    "gpu-transcription": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                "limits": {"memory": "24Gi", "nvidia.com/gpu": "1"},
            }
        },
        "pod_spec_config": {
            "node_selector": {"media-lake/node-pool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    },
    "cpu-normalization": {
        "container_config": {"resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}},
        "pod_spec_config": {"node_selector": {"media-lake/node-pool": "cpu"}},
    },
    "cpu-nlp": {
        "container_config": {"resources": {"requests": {"cpu": "2", "memory": "3Gi"}, "limits": {"memory": "6Gi"}}},
        "pod_spec_config": {"node_selector": {"media-lake/node-pool": "cpu"}},
    },
    "cpu-metadata": {
        "container_config": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}},
        "pod_spec_config": {"node_selector": {"media-lake/node-pool": "cpu"}},
    },
}
COMPUTE_CLASSES = tuple(STEP_POD_CONFIG)


def compute(compute_class: str) -> dict:
    """Keyword arguments for `@dg.asset` that route a step to its compute class."""
    return {
        "pool": compute_class,
        "op_tags": {
            "media-lake/compute": compute_class,
            "dagster-celery/queue": compute_class,
            "dagster-k8s/config": STEP_POD_CONFIG[compute_class],
        },
        "tags": {"compute": compute_class},
    }


def column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.dtype, description=c.description) for c in tables.TABLES[table]]
    )


def stage_metadata(stage: Stage) -> dict:
    """What the UI shows before anything ran: the columns of the (first) table the stage writes."""
    if not stage.tables:
        return {}
    return {"dagster/column_schema": column_schema(stage.tables[0]), "tables": ", ".join(stage.tables)}


def check_specs(stage: Stage) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(check.name, asset=stage.name, description=check.description, blocking=check.blocking)
        for check in stage.quality_checks
    ]


def stage_asset(stage: Stage) -> dg.AssetsDefinition:
    """The asset of one stage: runs it for the context's episode, then its quality gates."""

    @dg.asset(
        name=stage.name,
        partitions_def=episodes,
        deps=list(stage.upstream),
        code_version=stage.code_version,
        retry_policy=RETRY_POLICY,
        group_name=stage.domain,
        metadata=stage_metadata(stage),
        description=stage.description,
        kinds=set(stage.kinds),
        required_resource_keys={"lake"} | ({stage.settings} if stage.settings else set()),
        check_specs=check_specs(stage),
        **compute(stage.compute_class),
    )
    def _asset(context: dg.AssetExecutionContext):
        episode_id, attempt = context.partition_key, context.retry_number + 1
        with tracing.stage_span(
            stage.name, context.run_id, episode_id=episode_id, attempt=attempt, compute_class=stage.compute_class
        ):
            yield from run_stage(context, stage)

    return _asset


def stage_assets(domain: str) -> list[dg.AssetsDefinition]:
    return [stage_asset(stage) for stage in STAGES if stage.domain == domain]


def run_stage(context: dg.AssetExecutionContext, stage: Stage):
    """Run a stage for the context's episode, then its quality gates on what is stored.

    A transient error (errors.is_transient), in the stage or its gates, is retried by RETRY_POLICY.
    Anything else, and a transient error on the last attempt, is dead-lettered and fails at once
    without retry. A failed blocking gate is dead-lettered too; the step then fails after reporting
    the materialization and every gate's result, so the stages after it do not run.
    """
    episode_id = context.partition_key
    attempt = context.retry_number + 1
    tag_run_owner(context.instance, context.run, context.op_execution_context.get_step_execution_context())
    log = stage_logger(context.log, episode_id=episode_id, stage=stage.name, run_id=context.run_id, attempt=attempt)
    log.info("stage started")
    started = time.perf_counter()
    try:
        lake = context.resources.lake.store()
        settings = getattr(context.resources, stage.settings).settings() if stage.settings else None
        with ffmpeg_progress.reporting(context.instance, context.run_id, stage.name, _audio_seconds(lake, episode_id)):
            result = stage.run(lake, episode_id, settings) if stage.settings else stage.run(lake, episode_id)
        outcomes = quality.run_gates(lake, result.document, stage.quality_checks, settings, reuse=result.skipped)
    except Exception as exc:
        seconds, reason = round(time.perf_counter() - started, 3), failure_reason(exc)
        failure = {"error_type": type(exc).__name__, "error": str(exc), "reason": reason, "seconds": seconds}
        if is_transient(exc) and attempt <= RETRY_POLICY.max_retries:
            log.warning("transient error, will retry", **failure)
            raise
        _dead_letter(context, stage.name, exc, attempt)
        log.error("stage failed, dead-lettered", failure_class=failure_class(exc), **failure)
        raise dg.Failure(
            description=f"{stage.name} failed for episode {episode_id} after {attempt} attempt(s): "
            f"[{reason}] {type(exc).__name__}: {exc}",
            metadata={"reason": reason, "failure_class": failure_class(exc), "error_type": type(exc).__name__},
            allow_retries=False,
        ) from exc
    document = result.document
    seconds = round(time.perf_counter() - started, 3)
    audio_seconds = _audio_seconds(lake, episode_id)  # raw_media's: as it validated it now
    failed_gates = [check.name for check, outcome in outcomes if check.blocking and not outcome.passed]
    if failed_gates:
        failure = QualityGateFailed(f"{stage.name}: blocking quality gate(s) failed: {', '.join(failed_gates)}")
        _dead_letter(context, stage.name, failure, attempt)
        log.error("blocking quality gate failed, dead-lettered", gates=failed_gates, seconds=seconds)
    else:
        log.info(
            "stage finished",
            seconds=seconds,
            skipped_unchanged=result.skipped,
            audio_seconds=audio_seconds,
            real_time_factor=round(seconds / audio_seconds, 4) if audio_seconds else None,
        )
        if resolve(lake, stage.name, episode_id):
            log.info("its dead letter is resolved")
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(result.fingerprint),
        metadata={
            **{name: _metadata_value(value) for name, value in summaries.summary(document).items()},
            **{
                f"file_{name}": dg.MetadataValue.path(lake.uri(output["key"]))
                for name, output in document["outputs"].items()
                if output["key"].startswith(MEDIA_PREFIX)
            },
            "skipped_unchanged": result.skipped,
            # the exporter's step time and real-time factor (media_assets/observability)
            "stage_seconds": seconds,
            "audio_seconds": audio_seconds,
            "worker": dg.MetadataValue.json(step_worker()),
            "fingerprint": result.fingerprint,
            "outputs": dg.MetadataValue.json(document["outputs"]),
            "lake_document": dg.MetadataValue.path(lake.uri(document_key(stage.name, episode_id))),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=check.name,
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
                description=outcome.summary,
                metadata={"figures": dg.MetadataValue.json(outcome.figures)},
            )
            for check, outcome in outcomes
        ],
    )


def _audio_seconds(lake, episode_id: str) -> float | None:
    """The episode's audio length, for progress and real-time factors; None if it cannot be read
    (not yet validated, or unreadable: a metric never fails a stage)."""
    try:
        return read_document(lake, "raw_media", episode_id)["decoded_duration_s"]
    except Exception:  # noqa: BLE001
        return None


def _metadata_value(value):
    return dg.MetadataValue.md(value) if isinstance(value, summaries.Markdown) else value


def _dead_letter(context, stage: str, exc: BaseException, attempt: int) -> None:
    episode_id = context.partition_key
    dead_letter(
        context.resources.lake.store(),
        stage=stage,
        subject=episode_id,
        episode_id=episode_id,
        error=exc,
        attempts=attempt,
        payload={"episode_id": episode_id, "asset": stage},
        run_id=context.run_id,
    )
