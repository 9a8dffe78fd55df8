"""Fixes for Dagster bugs this project meets, applied on import by the code location and the CLI.

1. Dagster 1.13's `InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns
`min([0, *intervals])`, which is never positive: a run whose step waits for a pool slot never
sleeps between checks and spins a whole core for as long as it waits (dagster PR 20367 saw this
and was closed unmerged). The intended value is the time until the earliest pending re-check.

2. When `Definitions` binds resources to a sensor's job it rebuilds the sensor passing its owners,
which are `[]` when none were given; `[]` is not None, so every load warns that the beta parameter
`owners` was used, and `dg dev` repeats the warning on every reload. Nobody set it: silenced.
"""

from __future__ import annotations

import time
import warnings

from dagster import BetaWarning
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext


def _interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    if not self._pending_claims:
        return 0.0
    now = time.time()
    return max(0.0, min((ready_at - now for ready_at in self._pending_timeouts.values()), default=0.0))


InstanceConcurrencyContext.interval_to_next_pending_claim_check = _interval_to_next_pending_claim_check

warnings.filterwarnings(
    "ignore", message=r"Parameter `owners` of initializer `SensorDefinition.__init__`", category=BetaWarning
)
