"""Knobs: the settings users may tune, each declared once, on the lib settings dataclass that holds
it: its default, its name (a resource field, `MEDIA_LAKE_<NAME>`) and what it does. The settings
resources (`resources/settings.py`) are built from these declarations, so they cannot disagree."""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass

NAME, DOC = "knob", "doc"


@dataclass(frozen=True)
class Knob:
    name: str
    annotation: object  # the field's type; tuples are lists in the resource
    default: object
    doc: str


def knob(default, name: str, doc: str):
    """A dataclass field that users may tune under `name`."""
    return dataclasses.field(default=default, metadata={NAME: name, DOC: doc})


def knobs(settings_class: type) -> list[Knob]:
    """Every knob of a (nested) settings dataclass; a field that is neither is a mistake."""
    hints = typing.get_type_hints(settings_class)
    found = []
    for field in dataclasses.fields(settings_class):
        if dataclasses.is_dataclass(hints[field.name]):
            found += knobs(hints[field.name])
        elif NAME in field.metadata:
            found.append(Knob(field.metadata[NAME], hints[field.name], field.default, field.metadata[DOC]))
        else:
            raise TypeError(f"{settings_class.__name__}.{field.name} is neither a knob() nor settings")
    return found


def build(settings_class: type, values: dict[str, object]):
    """The (nested) settings dataclass with each knob set from `values`, by knob name."""
    hints = typing.get_type_hints(settings_class)
    fields = {}
    for field in dataclasses.fields(settings_class):
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            fields[field.name] = build(kind, values)
        else:
            value = values[field.metadata[NAME]]
            fields[field.name] = tuple(value) if typing.get_origin(kind) is tuple else value
    return settings_class(**fields)


ENV_PREFIX = "MEDIA_LAKE_"


def from_environment(names: list[str], environ=os.environ) -> dict[str, str]:
    """The raw `MEDIA_LAKE_<NAME>` values set for the knobs `names` (unset ones are left out)."""
    return {name: environ[ENV_PREFIX + name.upper()] for name in names if ENV_PREFIX + name.upper() in environ}
