"""The alert hook: each new dead letter is sent, once, to a webhook and/or a command.

Configured by environment, so every process that can write a dead letter (the CLI, a run worker,
the daemon's sensors) alerts the same way: MEDIA_LAKE_ALERT_WEBHOOK_URL gets the record as a JSON
POST; MEDIA_LAKE_ALERT_COMMAND runs with the record as JSON on its standard input. An alert that
cannot be delivered is logged and never fails the work that found the dead letter.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
import urllib.request
from dataclasses import dataclass

from media_assets.lib.core.settings import build, from_environment, knob, knobs

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
WEBHOOK_ATTEMPTS = 3  # a receiver restarting is not a lost alert; a long outage is only logged


@dataclass(frozen=True)
class AlertSettings:
    webhook_url: str = knob("", "alert_webhook_url", "URL that receives each new dead-letter record as a JSON POST")
    command: str = knob("", "alert_command", "command run once per new dead-letter record, the record as JSON on stdin")

    @classmethod
    def from_environment(cls) -> AlertSettings:
        values = {k.name: k.default for k in knobs(cls)}
        return build(cls, values | from_environment(list(values)))


def notify(record: dict, settings: AlertSettings) -> None:
    """Deliver `record` to every configured target; failures are logged, not raised."""
    body = json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
    if settings.webhook_url:
        _post(settings.webhook_url, body, record["record_id"])
    if settings.command:
        try:
            subprocess.run(shlex.split(settings.command), input=body, timeout=TIMEOUT_SECONDS, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("alert command for dead letter %s failed: %s", record["record_id"], exc)


def _post(url: str, body: bytes, record_id: str) -> None:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
                return
        except OSError as exc:  # URLError, HTTPError and timeouts are all OSErrors
            if attempt == WEBHOOK_ATTEMPTS:
                log.warning("alert webhook for dead letter %s failed %d times: %s", record_id, attempt, exc)
            else:
                time.sleep(attempt)
