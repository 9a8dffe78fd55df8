"""Error types shared by the pure logic and the Dagster layer.

Whether a failure is worth retrying is decided here, and only here (`is_transient`), from an
explicit list of what is transient: network and storage I/O errors, timeouts, throttling, out of
memory, and a tool killed by a signal. Everything else is permanent, including an unexpected
exception in our own code: it reproduces on every attempt, so retrying only delays the dead letter.
"""

from __future__ import annotations

import errno
import signal
import subprocess

# OSError numbers of failures that can clear by themselves: storage and network trouble,
# resource exhaustion. ENOENT, EACCES, EISDIR... reproduce identically and are not here.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ENOMEM, errno.ENOSPC, errno.EDQUOT,
        errno.ESTALE, errno.EMFILE, errno.ENFILE, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED,
        errno.ECONNABORTED, errno.EPIPE, errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET,
        errno.EHOSTDOWN, errno.EHOSTUNREACH,
    }
)  # fmt: skip
# S3 and other AWS error codes that mean "slow down" or "try again".
THROTTLING_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded", "TooManyRequestsException",
        "RequestTimeout", "RequestTimeoutException", "ServiceUnavailable", "InternalError",
    }
)  # fmt: skip


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


class QualityGateFailed(PermanentError):
    """A stage's stored outputs failed a blocking quality gate (lib/core/quality.py)."""

    def __init__(self, message: str):
        super().__init__("quality_gate_failed", message)


class MediaToolError(Exception):
    """ffmpeg or ffprobe exited with an error; `stderr` holds its last lines."""

    def __init__(self, command: list[str], returncode: int, stderr: str):
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"{command[0]} exited with {returncode}: {tail}")
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


# Exit codes of a tool run under a shell that was killed (128 + signal). Other codes above 128 are
# not signals: ffmpeg 7 exits with its negative error code masked to a byte (183: invalid data).
_SHELL_SIGNAL_CODES = frozenset(128 + s for s in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT))


def _killed_by_signal(error: MediaToolError) -> bool:
    """subprocess reports a signal as a negative code; ffmpeg exits 255 when it caught one."""
    code = error.returncode
    return code < 0 or code in _SHELL_SIGNAL_CODES or (code == 255 and "received signal" in error.stderr)


def _transient_alone(exc: BaseException) -> bool:
    if isinstance(exc, MediaToolError):
        return _killed_by_signal(exc)
    if isinstance(exc, (TimeoutError, ConnectionError, MemoryError, subprocess.TimeoutExpired)):
        return True
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):  # torch (CUDA) out of memory
        return True
    if _transient_aws(exc):  # before OSError: botocore's timeouts are OSErrors without an errno
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


def _transient_aws(exc: BaseException) -> bool:
    from botocore import exceptions as boto  # imported when needed: it is slow to import

    if isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):  # endpoint unreachable, read/connect timeouts
        return True
    if isinstance(exc, boto.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return exc.response.get("Error", {}).get("Code") in THROTTLING_CODES or status == 429 or status >= 500
    return False


def is_transient(exc: BaseException) -> bool:
    """True when retrying may help: `exc`, or an error it was raised from, is on the transient list.
    A PermanentError is never transient, whatever caused it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, PermanentError):
            return False
        if _transient_alone(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


def failure_class(exc: BaseException) -> str:
    return "transient" if is_transient(exc) else "permanent"


def failure_reason(exc: BaseException) -> str:
    """The dead-letter reason code for an error that ended a stage."""
    if isinstance(exc, PermanentError):
        return exc.reason
    if is_transient(exc):
        return "exhausted_retries"
    if isinstance(exc, MediaToolError):
        return "media_tool_failed"
    return "unexpected_error"
