"""Production Dagster storage: the same materialization recorded in PostgreSQL (dagster-postgres)
on the real local server. CI has the server; on a laptop without one the test says so."""

from __future__ import annotations

import dagster as dg
import pytest

from media_assets.definitions import defs
from media_assets.lib.core.lake import LocalStore
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.resources import LakeResource, MediaResource
from media_assets_tests.conftest import PG

SELECTION = ["raw_media", "normalized_audio"]

pytestmark = pytest.mark.services


def test_runs_and_partitions_live_in_postgres(tmp_path, media, postgres_db) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      username: {PG['user']}\n      password: ''\n      hostname: {PG['host']}\n"
        f"      db_name: {postgres_db}\n      port: {PG['port']}\n"
        "telemetry:\n  enabled: false\n"
    )
    lake = LocalStore(tmp_path / "lake")
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (outcome,) = ingest(
            [media["tone"]], lake, MediaLimits(), lambda ids: instance.add_dynamic_partitions("episodes", ids)
        )
        assets = [a for a in {a.key: a for a in defs().assets}.values() if a.key.path[0] in SELECTION]
        result = dg.materialize(
            assets,
            partition_key=outcome.episode_id,
            instance=instance,
            resources={
                "lake": LakeResource(root=str(lake.root)),
                "media": MediaResource(),
            },
            selection=SELECTION,
        )
        assert result.success
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as reopened:
        assert reopened.get_dynamic_partitions("episodes") == [outcome.episode_id]
        assert reopened.get_run_by_id(result.run_id).is_success
        event = reopened.get_latest_materialization_event(dg.AssetKey("normalized_audio"))
        assert event.asset_materialization.partition == outcome.episode_id
