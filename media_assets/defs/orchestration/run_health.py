"""dead_run_sensor: the daemon's side of run liveness (see media_assets/run_liveness.py).

Every tick fails, frees and dead-letters the runs whose process died on this host, so that a run
killed while the daemon runs (or a `media-lake materialize` killed beside it) never holds its pool
slots for long.
"""

import dagster as dg

from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.resources import LakeResource
from media_assets.run_liveness import reap_dead_runs


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails, frees the pool slots of, and dead-letters runs whose process died (kill -9, OOM, reboot).",
)
def dead_run_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance, lake.store(), list(COMPUTE_CLASSES))
    for dead in reaped:
        context.log.warning(dead.describe())
    return dg.SkipReason(f"cleaned up {len(reaped)} dead run(s)" if reaped else "no dead runs")
