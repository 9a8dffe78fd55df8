"""What the settings resources share: values from `MEDIA_LAKE_<FIELD>` variables, and building
their domain's settings dataclass (the one place each default lives; fields read it from there)."""

from __future__ import annotations

import os
import typing

import dagster as dg


class SettingsResource(dg.ConfigurableResource):
    @classmethod
    def from_env(cls):
        """Defaults overridden by `MEDIA_LAKE_<FIELD>` variables, e.g. MEDIA_LAKE_TARGET_LUFS=-16;
        list fields are comma-separated."""
        values: dict = {}
        for name, field in cls.model_fields.items():
            raw = os.environ.get(f"MEDIA_LAKE_{name.upper()}")
            if raw is None:
                continue
            is_list = typing.get_origin(field.annotation) is list
            values[name] = [item.strip() for item in raw.split(",") if item.strip()] if is_list else raw
        return cls(**values)

    def settings(self):
        """The domain's settings dataclass, as the stages take it."""
        raise NotImplementedError
