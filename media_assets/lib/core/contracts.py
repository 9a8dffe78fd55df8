"""JSON Schema (draft 2020-12) contracts for every JSON artifact; files live in `schemas/`."""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from media_assets.lib.core.errors import ContractViolation

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"
# Bytes that passed their schema in this process are not checked again: a worker reads an hour's
# transcript (1.6 MB, 0.7 s to validate) in three stages. Keyed by a hash of the bytes, so a
# changed document is always checked.
_VALIDATED: dict[tuple[str, bytes], None] = {}  # insertion order: the oldest is dropped first
_VALIDATED_MAX = 4096
_validated_lock = threading.Lock()


@lru_cache(maxsize=1)
def _registry() -> tuple[Registry, dict[str, dict]]:
    schemas = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        schemas[path.name.removesuffix(".schema.json")] = schema
    registry = Registry().with_resources((schema["$id"], Resource.from_contents(schema)) for schema in schemas.values())
    return registry, schemas


def schema_names() -> list[str]:
    return sorted(_registry()[1])


def validate_document(schema_name: str, document: dict) -> dict:
    """Raise ContractViolation naming the offending field if `document` breaks its schema."""
    registry, schemas = _registry()
    if schema_name not in schemas:
        raise ContractViolation(f"no JSON Schema named {schema_name!r} in {SCHEMA_DIR}")
    validator = Draft202012Validator(schemas[schema_name], registry=registry)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        field = "/".join(str(p) for p in first.absolute_path) or "(document)"
        raise ContractViolation(f"{schema_name} JSON: field '{field}': {first.message}")
    return document


def dump_document(schema_name: str, document: dict) -> bytes:
    """Validate, then serialize canonically (sorted keys) so equal content gives equal bytes."""
    validate_document(schema_name, document)
    data = (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    _remember_valid(_valid_key(schema_name, data))
    return data


def load_document(schema_name: str, data: bytes) -> dict:
    document = json.loads(data)
    key = _valid_key(schema_name, data)
    if key not in _VALIDATED:
        validate_document(schema_name, document)
        _remember_valid(key)
    return document


def _valid_key(schema_name: str, data: bytes) -> tuple[str, bytes]:
    return schema_name, hashlib.blake2b(data, digest_size=16).digest()


def _remember_valid(key: tuple[str, bytes]) -> None:
    with _validated_lock:
        _VALIDATED[key] = None
        if len(_VALIDATED) > _VALIDATED_MAX:
            del _VALIDATED[next(iter(_VALIDATED))]
