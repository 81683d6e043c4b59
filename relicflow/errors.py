"""The small exception tree every relicflow module raises from.

Quarantine reasons carry a stable ``code`` (for machines, reports and tests) and a human sentence in
Chinese and English (for the museum technician who has to fix the scan).
"""

from __future__ import annotations


class RelicflowError(Exception):
    """Base of every error relicflow raises on purpose."""


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

    def __reduce__(self) -> tuple[object, ...]:
        # keyword details do not survive pickling's default (args-only) path; scans run in worker processes
        return (_rebuild_input_rejected, (self.code, self.message_en, self.message_zh, self.details))


def _rebuild_input_rejected(code: str, message_en: str, message_zh: str, details: dict[str, object]) -> InputRejected:
    return InputRejected(code, message_en, message_zh, **details)


class IngestStopped(RelicflowError):
    """The ingest run itself cannot go on (data disk full, catalogue or object store unreachable, inbox
    gone). Items not yet done stay ``received`` for the next run; the run is reported as failed."""

    def __init__(self, message_en: str, message_zh: str) -> None:
        super().__init__(message_en)
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


class IllegalTransition(CatalogueError):
    def __init__(self, item_id: int, from_status: str, to_status: str) -> None:
        super().__init__(f"item {item_id}: cannot go from {from_status!r} to {to_status!r}")
        self.item_id = item_id
        self.from_status = from_status
        self.to_status = to_status


class ReviewError(RelicflowError):
    """A review decision is not allowed (wrong role, item not awaiting review, missing reason)."""


class IssuerError(RelicflowError):
    """The issuer refused a mint request or could not be reached after every retry."""

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable


class SignatureError(IssuerError):
    """A request or callback signature is missing, stale or wrong."""
