"""JSON Schema and pandera contracts: every schema is valid, violations name the field, and a
stage never writes an artifact that breaks its contract."""

from __future__ import annotations

import dataclasses
import json

import pytest

from media_assets.lib.core import contracts, tables
from media_assets.lib.core.errors import ContractViolation
from media_assets.lib.core.stage import StageRun
from media_assets.lib.stages import BY_NAME

EPISODE = "0123456789abcdef01234567"


def test_every_schema_is_valid_draft_2020_12_and_has_an_id() -> None:
    names = contracts.schema_names()
    assert {
        "common",
        "registration",
        "raw_media",
        "normalized_audio",
        "normalized_video",
        "media_metadata",
        "dead_letter",
    } <= set(names)
    for path in contracts.SCHEMA_DIR.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(path.name)


def test_json_violation_names_the_field() -> None:
    registration = {
        "episode_id": EPISODE,
        "sha256": "a" * 64,
        "size_bytes": 0,
        "source_uri": "/x",
        "original_name": "x",
        "sidecar_verified": False,
    }
    with pytest.raises(ContractViolation, match="field 'size_bytes'"):
        contracts.validate_document("registration", registration)
    with pytest.raises(ContractViolation, match="field 'episode_id'"):
        contracts.validate_document("registration", {**registration, "size_bytes": 1, "episode_id": "../x"})
    assert contracts.validate_document("registration", {**registration, "size_bytes": 1})


def test_documents_are_checked_on_read_too(lake) -> None:
    lake.put_bytes(f"raw_media/episode_id={EPISODE}/raw_media.json", b'{"stage": "raw_media"}')
    from media_assets.lib.core.stage import read_document

    with pytest.raises(ContractViolation, match="raw_media JSON"):
        read_document(lake, "raw_media", EPISODE)


def test_bytes_that_passed_are_not_checked_again_but_changed_bytes_are(monkeypatch) -> None:
    good = {"sha256": "b" * 64, "episode_id": EPISODE}
    data = contracts.dump_document("identity", good)
    tampered = data.replace(b'"bbbb', b'"zzzz')  # same length, no longer hex
    checks = []
    real = contracts.validate_document
    monkeypatch.setattr(contracts, "validate_document", lambda name, doc: checks.append(name) or real(name, doc))
    assert contracts.load_document("identity", data) == good
    assert checks == []  # this process wrote these bytes: known good
    with pytest.raises(ContractViolation, match="field 'sha256'"):
        contracts.load_document("identity", tampered)
    assert checks == ["identity"]


def test_pandera_violation_names_the_column() -> None:
    row = {"episode_id": EPISODE, "source": "id3", "stream_index": None, "key": "TIT2", "value": "x"}
    assert tables.to_parquet_bytes("media_metadata", [row])
    with pytest.raises(ContractViolation, match="source"):
        tables.to_parquet_bytes("media_metadata", [{**row, "source": "made-up"}])
    with pytest.raises(ContractViolation, match="end_time"):
        tables.to_parquet_bytes(
            "captions",
            [
                {
                    "episode_id": EPISODE,
                    "stream_index": 2,
                    "language": None,
                    "codec": "subrip",
                    "cue_index": 0,
                    "start_time": 5.0,
                    "end_time": 1.0,
                    "text": "backwards",
                }
            ],
        )


def test_parquet_is_deterministic_and_typed_even_when_empty() -> None:
    row = {"episode_id": EPISODE, "source": "container", "stream_index": None, "key": "title", "value": "t"}
    assert tables.to_parquet_bytes("media_metadata", [row]) == tables.to_parquet_bytes("media_metadata", [row])
    import io

    import pyarrow.parquet as pq

    empty = pq.read_table(io.BytesIO(tables.to_parquet_bytes("captions", [])))
    assert empty.num_rows == 0 and empty.schema == tables.arrow_schema("captions")


def test_a_bad_stage_document_is_never_written(lake) -> None:
    without_inputs = dataclasses.replace(BY_NAME["normalized_audio"], upstream=())
    stage = StageRun(lake, without_inputs, EPISODE, {})
    with pytest.raises(ContractViolation, match="loudness"):
        stage.finish({})  # the normalized_audio schema requires `loudness`
    assert not lake.exists(f"normalized_audio/episode_id={EPISODE}/normalized_audio.json")
