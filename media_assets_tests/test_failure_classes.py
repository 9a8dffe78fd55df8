"""The one place that decides whether a failure is worth retrying: each class on the transient
list, and what must not be on it."""

from __future__ import annotations

import errno
import subprocess

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from media_assets.lib.core.errors import (
    ContractViolation,
    MediaToolError,
    RejectedMedia,
    failure_reason,
    is_transient,
)


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        raise outer from cause
    except BaseException as exc:  # noqa: BLE001 - the point is to build the chain
        return exc


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.OutOfMemoryError, recognised by name so that torch need not be imported."""


TRANSIENT = {
    "storage I/O error": OSError(errno.EIO, "Input/output error"),
    "disk full": OSError(errno.ENOSPC, "No space left on device"),
    "stale NFS handle": OSError(errno.ESTALE, "Stale file handle"),
    "connection reset": ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    "connection refused": ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    "timeout": TimeoutError("timed out"),
    "tool timeout": subprocess.TimeoutExpired(["ffmpeg"], 30),
    "S3 unreachable": EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    "S3 read timeout": ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    "S3 throttling": client_error("SlowDown", 503),
    "S3 429": client_error("TooManyRequests", 429),
    "S3 500": client_error("InternalError", 500),
    "out of memory": MemoryError(),
    "GPU out of memory": OutOfMemoryError("CUDA out of memory"),
    "ffmpeg killed (SIGKILL)": MediaToolError(["ffmpeg"], -9, ""),
    "ffmpeg caught SIGTERM": MediaToolError(["ffmpeg"], 255, "Exiting normally, received signal 15."),
    "tool killed under a shell": MediaToolError(["ffmpeg"], 137, ""),
    "I/O error wrapped by our code": raised_from(RuntimeError("could not store"), OSError(errno.EIO, "EIO")),
}
PERMANENT = {
    "ffmpeg refuses the input": MediaToolError(["ffmpeg"], 1, "Invalid data found when processing input"),
    "ffmpeg 7 refuses the input": MediaToolError(["ffmpeg"], 183, "Invalid data found when processing input"),
    "ffmpeg 7 cannot open a file": MediaToolError(["ffmpeg"], 254, "No such file or directory"),
    "missing file": FileNotFoundError(errno.ENOENT, "No such file or directory"),
    "permission denied": PermissionError(errno.EACCES, "Permission denied"),
    "S3 access denied": client_error("AccessDenied", 403),
    "S3 no such key": client_error("NoSuchKey", 404),
    "bug in our code": ZeroDivisionError("division by zero"),
    "unknown format": ValueError("unknown format: 65534"),
    "rejected media": RejectedMedia("unreadable_media", "not media"),
    "contract violation": ContractViolation("field x"),
    "rejection caused by an I/O error": raised_from(RejectedMedia("io_error", "x"), OSError(errno.EIO, "EIO")),
}


@pytest.mark.parametrize("name", TRANSIENT)
def test_transient(name: str) -> None:
    assert is_transient(TRANSIENT[name])
    assert failure_reason(TRANSIENT[name]) == "exhausted_retries"


@pytest.mark.parametrize("name", PERMANENT)
def test_permanent(name: str) -> None:
    assert not is_transient(PERMANENT[name])
    assert failure_reason(PERMANENT[name]) != "exhausted_retries"


def test_reasons() -> None:
    assert failure_reason(PERMANENT["rejected media"]) == "unreadable_media"
    assert failure_reason(PERMANENT["ffmpeg refuses the input"]) == "media_tool_failed"
    assert failure_reason(PERMANENT["bug in our code"]) == "unexpected_error"
