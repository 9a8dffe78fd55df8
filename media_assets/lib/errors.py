"""Error types shared by the pure logic and the Dagster layer.

`PermanentError` means "retrying cannot help" (bad media, broken contract): the Dagster layer
turns it into a non-retryable failure plus a dead-letter record. Anything else is treated as
transient and retried with backoff.
"""


class PermanentError(Exception):
    """A failure that no retry can fix. `reason` is a short machine-readable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class RejectedMedia(PermanentError):
    """An input that breaks the media contract (corrupt, empty, too short, wrong checksum...)."""


class ContractViolation(PermanentError):
    """An artifact that does not match its JSON Schema or pandera schema."""

    def __init__(self, message: str):
        super().__init__("contract_violation", message)


class ModelUnavailable(PermanentError):
    """A configured model cannot be found or fetched here; the message says how to provide it."""

    def __init__(self, message: str):
        super().__init__("model_unavailable", message)


class MediaToolError(Exception):
    """ffmpeg or ffprobe exited with an error; `stderr` holds its last lines."""

    def __init__(self, command: list[str], returncode: int, stderr: str):
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"{command[0]} exited with {returncode}: {tail}")
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
