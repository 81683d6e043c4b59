"""relicflow's errors cross process boundaries (isolated workers, Prefect results) intact."""

from __future__ import annotations

import pickle
import signal

import pytest

from relicflow.errors import (
    IllegalTransition,
    InputRejected,
    IssuerError,
    RelicflowError,
    RemoteError,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerTimedOut,
)


@pytest.mark.parametrize("error", [
    InputRejected("truncated_image", "The file is incomplete.", "文件不完整。", decoder_message="EOF"),
    IllegalTransition(7, "received", "minted"),
    IssuerError("refused", status_code=409, retryable=True),
    WorkerTimedOut("tasks.validation.decode_and_validate", 1234, 30.0),
    WorkerCrashed("tasks.validation.decode_and_validate", 1234, -signal.SIGSEGV),
    WorkerOutOfMemory("tasks.cleanup.make_derivatives", 1234, 512, "Traceback ..."),
    RemoteError("f", "module.Error", "message", "Traceback ..."),
], ids=type)
def test_error_survives_pickling_with_its_attributes(error: RelicflowError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert copy.__dict__ == error.__dict__


def test_worker_crashed_says_how_the_worker_ended() -> None:
    segfault = WorkerCrashed("f", 10, -signal.SIGSEGV)
    assert (segfault.signal_number, segfault.signal_name) == (signal.SIGSEGV, "SIGSEGV")
    assert "was killed by SIGSEGV" in str(segfault)
    assert "out-of-memory killer" in str(WorkerCrashed("f", 10, -signal.SIGKILL))
    exited = WorkerCrashed("f", 10, 3)
    assert (exited.signal_number, exited.signal_name) == (None, None)
    assert "exited with code 3" in str(exited)
    assert "unknown" in str(WorkerCrashed("f", 10, None))
