"""The small exception tree every relicflow module raises from.

Quarantine reasons carry a stable ``code`` (for machines, reports and tests) and a human sentence in
Chinese and English (for the museum technician who has to fix the scan).
"""

from __future__ import annotations

import signal


class RelicflowError(Exception):
    """Base of every error relicflow raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Pickle rebuilds an exception by calling ``cls(*self.args)``; subclasses whose __init__ takes other
        # arguments than their message (InputRejected, IllegalTransition) then fail to unpickle, and they
        # must cross process boundaries (isolated workers, Prefect results). Rebuild without __init__.
        return (_restore_error, (type(self), self.args, self.__dict__))


def _restore_error(cls: type[RelicflowError], args: tuple[object, ...], state: dict[str, object]) -> RelicflowError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigurationError(RelicflowError):
    """Settings are missing or contradict each other."""


class InputRejected(RelicflowError):
    """A dropped file or sheet row cannot be processed; the item is quarantined, the batch goes on.

    ``code`` is stable (e.g. ``truncated_image``); ``message_en``/``message_zh`` say what is wrong and
    what the technician can do about it.
    """

    def __init__(self, code: str, message_en: str, message_zh: str, **details: object) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh
        self.details = details

    def message(self, locale: str = "zh-CN") -> str:
        return self.message_en if locale.startswith("en") else self.message_zh


class IngestStopped(RelicflowError):
    """The ingest run itself cannot go on (data disk full, catalogue or object store unreachable, inbox
    gone). Items not yet done stay ``received`` for the next run; the run is reported as failed."""

    def __init__(self, message_en: str, message_zh: str) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh

    def message(self, locale: str = "zh-CN") -> str:
        return self.message_en if locale.startswith("en") else self.message_zh


class BadCommandInput(RelicflowError):
    """A value typed on the command line is not one relicflow knows (e.g. a status name); says which are."""

    def __init__(self, code: str, message_en: str, message_zh: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh

    def message(self, locale: str = "zh-CN") -> str:
        return self.message_en if locale.startswith("en") else self.message_zh


class StorageError(RelicflowError):
    """The object store refused or lost a write or read."""


class StorageUnavailable(StorageError):
    """The store cannot take writes at all right now (disk full, read-only, endpoint unreachable after
    retries): a problem of the installation, not of the file being stored."""


class IntegrityError(StorageError):
    """Stored bytes do not match the checksum they were stored under."""


class CatalogueError(RelicflowError):
    """A catalogue operation would break the item's life (e.g. an illegal status transition)."""


class UnknownUser(CatalogueError):
    """No review-app account has this user name."""

    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}")
        self.username = username


class IllegalTransition(CatalogueError):
    def __init__(self, item_id: int, from_status: str, to_status: str) -> None:
        super().__init__(f"item {item_id}: cannot go from {from_status!r} to {to_status!r}")
        self.item_id = item_id
        self.from_status = from_status
        self.to_status = to_status


class AuditKeyMissing(CatalogueError):
    """The key that seals the audit chain is not where the settings say, or is not a key."""


class RecordBroken(CatalogueError):
    """The review record does not vouch for itself (a changed, removed or unsealed entry, or a status or
    decision the chain does not show): nothing may be minted until an administrator has looked."""


class CatalogueMismatch(CatalogueError):
    """A flow run opened a catalogue other than the one it was started for (two installations on one
    machine, one reporting to the other's Prefect server): it refuses to act on it."""

    def __init__(self, message_en: str, message_zh: str, *, expected: str, found: str) -> None:
        super().__init__(f"{message_en} / {message_zh}")
        self.message_en = message_en
        self.message_zh = message_zh
        self.expected = expected
        self.found = found

    def message(self, locale: str = "zh-CN") -> str:
        return self.message_en if locale.startswith("en") else self.message_zh


class NotAnInstallation(ConfigurationError):
    """A command other than `relicflow init` was run where no initialised data dir is."""

    def __init__(self, message_en: str, message_zh: str, *, data_dir: str) -> None:
        super().__init__(f"{message_en} / {message_zh}")
        self.message_en = message_en
        self.message_zh = message_zh
        self.data_dir = data_dir


class ReviewError(RelicflowError):
    """A review decision is not allowed (wrong role, item not awaiting review, missing reason)."""


class SecondApprovalRefused(ReviewError):
    """A further approval of an item needing two or more, by a role that may not give it (relicflow/roles.py)."""

    code = "needs_senior_reviewer"


class OwnItemRefused(ReviewError):
    """An approval by the person whose ingest run brought the item into the catalogue or changed it."""

    code = "own_item"

    def __init__(self, message: str, runs: list[int]) -> None:
        super().__init__(message)
        self.runs = runs


class ReopenRefused(ReviewError):
    """An administrator's reopen is not allowed for this item; ``code`` says why (``not_decided``,
    ``batched``, ``minted``, ``was_batched``, ``reason_required``, ``not_admin``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class QueueQueryInvalid(ReviewError):
    """A review-queue filter, sort or page cursor the queue does not know; ``code`` says which
    (``status``, ``run``, ``grade``, ``warnings``, ``duplicates``, ``compliance``, ``approval``, ``search``, ``sort``,
    ``cursor``, ``limit``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class IssuerError(RelicflowError):
    """The issuer refused a mint request or could not be reached after every retry.

    ``code`` is the issuer's problem code when it answered one (e.g. ``already_minted``); ``item_refs``
    the items that problem is about.
    """

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False,
                 code: str | None = None, item_refs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable
        self.code = code
        self.item_refs = item_refs


class BadReceipt(IssuerError, CatalogueError):
    """The issuer's receipt cannot be recorded as it is (a token id twice, another chain, another batch's
    items, a token id the catalogue already holds): the batch is not marked minted, others go on.
    Both an issuer problem and a refusal to break the catalogue's record, hence both bases."""

    def __init__(self, code: str, message_en: str, message_zh: str) -> None:
        super().__init__(f"{code}: {message_en}", retryable=False, code=code)
        self.message_en = message_en
        self.message_zh = message_zh

    def message(self, locale: str = "zh-CN") -> str:
        return self.message_en if locale.startswith("en") else self.message_zh

    def both(self) -> str:
        """Both languages, for last_error and logs (read by whoever is on duty)."""
        return f"{self.code}: {self.message_en} / {self.message_zh}"


class SignatureError(IssuerError):
    """A request or callback signature is missing, stale or wrong."""


class IsolationError(RelicflowError):
    """Work sent to an isolated worker process came back neither as a result nor as its own exception.

    Raised by :class:`relicflow.isolated.IsolatedWorkers`; also for a pool that is closed or whose
    launcher process cannot start.
    """


class WorkerTimedOut(IsolationError):
    """The call ran longer than its time limit; the worker and everything it started were killed."""

    def __init__(self, call: str, pid: int, timeout_s: float) -> None:
        super().__init__(f"{call} did not finish within {timeout_s:g} s; worker process {pid} was killed")
        self.call = call
        self.pid = pid
        self.timeout_s = timeout_s


class WorkerCrashed(IsolationError):
    """The worker process died during the call (a signal such as SIGSEGV or SIGKILL, or an exit).

    ``exit_code`` follows ``subprocess``: negative for a signal, ``None`` when nobody could tell (the
    launcher process died too). A SIGKILL that relicflow did not send usually means the kernel's
    out-of-memory killer.
    """

    def __init__(self, call: str, pid: int, exit_code: int | None) -> None:
        self.call = call
        self.pid = pid
        self.exit_code = exit_code
        self.signal_number = -exit_code if exit_code is not None and exit_code < 0 else None
        super().__init__(f"worker process {pid} {self.how_it_ended()} while running {call}")

    @property
    def signal_name(self) -> str | None:
        if self.signal_number is None:
            return None
        try:
            return signal.Signals(self.signal_number).name
        except ValueError:
            return f"signal {self.signal_number}"

    def how_it_ended(self) -> str:
        if self.exit_code is None:
            return "died (exit status unknown: its launcher process died too)"
        if self.signal_number is None:
            return f"exited with code {self.exit_code}"
        described = signal.strsignal(self.signal_number) or self.signal_name
        if self.signal_number == signal.SIGKILL:
            described += "; not sent by relicflow, so probably the kernel's out-of-memory killer"
        return f"was killed by {self.signal_name} ({described})"


class WorkerOutOfMemory(IsolationError):
    """The call ran out of memory (MemoryError, or the worker's memory limit); the worker was replaced."""

    def __init__(self, call: str, pid: int, memory_limit_mb: int | None, remote_traceback: str) -> None:
        limit = f"its limit of {memory_limit_mb} MB" if memory_limit_mb else "the memory available"
        super().__init__(f"{call} needed more memory than {limit} in worker process {pid}")
        self.call = call
        self.pid = pid
        self.memory_limit_mb = memory_limit_mb
        self.remote_traceback = remote_traceback


class RemoteError(IsolationError):
    """The call raised an exception (or returned a result) that cannot be sent back between processes.

    Carries what can be carried: the exception's type name, its message and the worker's traceback.
    """

    def __init__(self, call: str, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{call} raised {type_name}: {message}")
        self.call = call
        self.type_name = type_name
        self.remote_message = message
        self.remote_traceback = remote_traceback


class RemoteTraceback(Exception):
    """Never raised: set as ``__cause__`` of an exception re-raised from a worker, so that printing it
    shows where in the worker it happened."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\n--- traceback in the worker process ---\n{self.text}"
