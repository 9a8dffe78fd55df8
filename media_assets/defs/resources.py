"""Resources bound for the whole code location, configured from the environment."""

import dagster as dg

from media_assets.resources import SETTINGS_RESOURCES, InboxResource, LakeResource


@dg.definitions
def resources() -> dg.Definitions:
    settings = {domain: resource.from_env() for domain, resource in SETTINGS_RESOURCES.items()}
    return dg.Definitions(resources={"lake": LakeResource.from_env(), "inbox": InboxResource.from_env(), **settings})
