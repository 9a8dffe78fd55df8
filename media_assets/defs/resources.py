"""Resources bound for the whole code location, configured from the environment."""

import dagster as dg

from media_assets.resources import LakeResource, MediaSettings
from media_assets.resources.enrichment import EnrichmentResource
from media_assets.resources.speech import SpeechSettings


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "lake": LakeResource.from_env(),
            "settings": MediaSettings.from_env(),
            "speech": SpeechSettings.from_env(),
            "enrichment": EnrichmentResource.from_env(),
        }
    )
