"""One settings resource per domain, built from the knobs its lib settings dataclass declares
(lib/core/settings.py): every knob is a field (UI launchpad, run config) and a `MEDIA_LAKE_<FIELD>`
variable, with the default declared there."""

from __future__ import annotations

import typing
from typing import ClassVar

import dagster as dg
import pydantic

from media_assets.lib.core.settings import build, from_environment, knobs
from media_assets.lib.distribution.settings import DistributionSettings
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.speech.settings import SpeechSettings
from media_assets.lib.text.settings import TextSettings


class SettingsResource(dg.ConfigurableResource):
    settings_class: ClassVar[type]

    @classmethod
    def from_env(cls):
        """Defaults overridden by `MEDIA_LAKE_<FIELD>` variables, e.g. MEDIA_LAKE_TARGET_LUFS=-16;
        list fields are comma-separated."""
        values: dict = {}
        for name, raw in from_environment(list(cls.model_fields)).items():
            is_list = typing.get_origin(cls.model_fields[name].annotation) is list
            values[name] = [item.strip() for item in raw.split(",") if item.strip()] if is_list else raw
        return cls(**values)

    def settings(self):
        """The domain's settings dataclass, as the stages take it. A knob this resource was not
        given keeps its `MEDIA_LAKE_<FIELD>` value: Dagster builds a run's resource from that run's
        config alone, so a launchpad config that sets one knob would otherwise reset the others."""
        environment = type(self).from_env()
        return build(
            self.settings_class,
            {
                name: getattr(self if name in self.model_fields_set else environment, name)
                for name in type(self).model_fields
            },
        )


def settings_resource(name: str, settings_class: type, doc: str) -> type[SettingsResource]:
    fields = {}
    for knob in knobs(settings_class):
        is_tuple = typing.get_origin(knob.annotation) is tuple
        annotation = list[typing.get_args(knob.annotation)[0]] if is_tuple else knob.annotation
        default = list(knob.default) if is_tuple else knob.default
        fields[knob.name] = (annotation, pydantic.Field(default=default, description=knob.doc))
    resource = pydantic.create_model(name, __base__=SettingsResource, __doc__=doc, __module__=__name__, **fields)
    resource.settings_class = settings_class
    return resource


MediaResource = settings_resource(
    "MediaResource",
    MediaSettings,
    "How episodes are validated and normalized, and the media quality gates' limits.",
)
SpeechResource = settings_resource(
    "SpeechResource",
    SpeechSettings,
    "Which speech models run, and where; the speech quality gates' limits. A known speaker count for one "
    "episode is `num_speakers` in that run's config.",
)
TextResource = settings_resource(
    "TextResource", TextSettings, "Which text models the text stages use, and how chapters are cut."
)
DistributionResource = settings_resource(
    "DistributionResource", DistributionSettings, "How distribution files are encoded."
)

# keyed by the domain name a stage's `settings` names
SETTINGS_RESOURCES: dict[str, type[SettingsResource]] = {
    "media": MediaResource,
    "speech": SpeechResource,
    "text": TextResource,
    "distribution": DistributionResource,
}
