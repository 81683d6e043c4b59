"""Who may do what: the one declared matrix of roles and actions.

Pure data plus :func:`allowed`. The review app checks every route's action against it (review_ui/access.py)
and the catalogue checks decisions against the same table (relicflow/catalogue/reviews.py), so the web's
message and the catalogue's refusal can never disagree about a role.
"""

from __future__ import annotations

import enum

from relicflow.catalogue.models import Role


class Action(str, enum.Enum):
    """Everything a signed-in person can ask of the review app or the catalogue."""

    queue_read = "queue.read"
    item_read = "item.read"
    quarantine_read = "quarantine.read"
    item_decide = "item.decide"              # approve (a first approval), reject, send back
    item_second_approval = "item.second_approval"  # any approval after the first of an item needing two or more
    item_reopen = "item.reopen"
    item_retry = "item.retry"
    fixity_read = "fixity.read"
    audit_read = "audit.read"
    audit_export = "audit.export"


_READ = frozenset({Action.queue_read, Action.item_read, Action.quarantine_read})

MATRIX: dict[Role, frozenset[Action]] = {
    Role.digitiser: _READ | {Action.item_retry},
    Role.reviewer: _READ | {Action.item_decide},
    Role.senior_reviewer: _READ | {Action.item_decide, Action.item_second_approval},
    Role.admin: frozenset(Action) - {Action.item_second_approval},
    Role.auditor: _READ | {Action.fixity_read, Action.audit_read, Action.audit_export},
}


def allowed(role: str | Role | None, action: str | Action) -> bool:
    """Whether ``role`` may do ``action``; an unknown role or action may do nothing."""
    try:
        return Action(action) in MATRIX[Role(role)]
    except (ValueError, KeyError):
        return False

