"""What the stage modules share: the episode partitions, compute routing, retries and the
dead-letter path."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from media_assets.lib.core import tables
from media_assets.lib.core.dead_letters import dead_letter
from media_assets.lib.core.errors import failure_class, failure_reason, is_transient
from media_assets.lib.core.lake import document_key
from media_assets.lib.core.stage import StageResult
from media_assets.resources import LakeResource
from media_assets.run_liveness import tag_run_owner

episodes = dg.DynamicPartitionsDefinition(name="episodes")

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# One compute class per asset; each becomes a local pool, a Celery queue and a k8s pod spec.
_K8S = {
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
COMPUTE_CLASSES = tuple(_K8S)


def compute(compute_class: str) -> dict:
    """Keyword arguments for `@dg.asset` that route a step to its compute class."""
    return {
        "pool": compute_class,
        "op_tags": {
            "media-lake/compute": compute_class,
            "dagster-celery/queue": compute_class,
            "dagster-k8s/config": _K8S[compute_class],
        },
        "tags": {"compute": compute_class},
    }


def column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.dtype, description=c.description) for c in tables.TABLES[table]]
    )


def table_metadata(*table_names: str) -> dict:
    """Asset metadata the UI shows: the columns of the (first) table the asset writes."""
    return {"dagster/column_schema": column_schema(table_names[0]), "tables": ", ".join(table_names)}


def run_stage(
    context: dg.AssetExecutionContext, lake: LakeResource, stage: str, body: Callable[[], StageResult]
) -> dg.MaterializeResult:
    """Run a stage body for the context's episode.

    A transient error (errors.is_transient) is retried by RETRY_POLICY. Anything else, and a
    transient error on the last attempt, is dead-lettered and fails at once without retry.
    """
    episode_id = context.partition_key
    attempt = context.retry_number + 1
    tag_run_owner(context.instance, context.run, context.op_execution_context.get_step_execution_context())
    try:
        result = body()
    except Exception as exc:
        if is_transient(exc) and attempt <= RETRY_POLICY.max_retries:
            context.log.warning(f"{stage}: transient {type(exc).__name__} on attempt {attempt}, will retry: {exc}")
            raise
        _dead_letter(context, lake, stage, episode_id, exc, attempt)
        reason = failure_reason(exc)
        raise dg.Failure(
            description=f"{stage} failed for episode {episode_id} after {attempt} attempt(s): "
            f"[{reason}] {type(exc).__name__}: {exc}",
            metadata={"reason": reason, "failure_class": failure_class(exc)},
            allow_retries=False,
        ) from exc
    document = result.document
    return dg.MaterializeResult(
        data_version=dg.DataVersion(result.fingerprint),
        metadata={
            "skipped_unchanged": result.skipped,
            "fingerprint": result.fingerprint,
            "outputs": dg.MetadataValue.json(document["outputs"]),
            "lake_document": dg.MetadataValue.path(lake.store().uri(document_key(stage, episode_id))),
        },
    )


def _dead_letter(context, lake: LakeResource, stage: str, episode_id: str, exc: BaseException, attempt: int) -> None:
    dead_letter(
        lake.store(),
        stage=stage,
        subject=episode_id,
        episode_id=episode_id,
        error=exc,
        attempts=attempt,
        payload={"episode_id": episode_id, "asset": stage},
        run_id=context.run_id,
    )
