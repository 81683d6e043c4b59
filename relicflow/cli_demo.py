"""`relicflow init --demo` (what `make demo` runs): safe to run again and again.

The sample files never replace anything in the inbox, and an existing demo account keeps its password, so a
second `make demo` neither destroys staff's files nor signs a reviewer out of a working login. Two accounts: a
reviewer, and a senior reviewer for the second approval a graded relic (the 一级 sample) needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relicflow.i18n import N_
from relicflow.settings import Settings

if TYPE_CHECKING:
    from relicflow.catalogue import Catalogue

DEMO_REVIEWER = "reviewer"
DEMO_SENIOR = "senior"
LISTED_NAMES = 20  # skipped samples named one by one, up to this many


@dataclass(frozen=True)
class DemoLogin:
    name: str
    password: str | None  # set only when the account was created now: an existing one keeps its own
    active: bool


def ensure_demo_account(catalogue: Catalogue, name: str, role: str, display_name: str, *, actor: str) -> DemoLogin:
    """A demo account, created with a new password if missing; an existing one is left exactly as it is."""
    from relicflow.passwords import generate_password, hash_password

    existing = catalogue.account(name)
    if existing is not None:
        return DemoLogin(name, None, existing.active)
    password = generate_password()
    catalogue.add_user(name, hash_password(password), role, display_name=display_name, actor=actor)
    return DemoLogin(name, password, True)


def ensure_demo_reviewer(catalogue: Catalogue, *, actor: str) -> DemoLogin:
    return ensure_demo_account(catalogue, DEMO_REVIEWER, "reviewer", "Demo reviewer", actor=actor)


def set_up_demo(settings: Settings, catalogue: Catalogue, *, actor: str, say: Callable[..., None]) -> None:
    """Put the samples in the inbox and make sure there is a demo reviewer; ``say(key, **values)`` reports."""
    from relicflow.samples.generate import place_demo_inbox

    placed = place_demo_inbox(settings.inbox)
    say("cli.demo.placed", written=len(placed.written), same=len(placed.already_there), inbox=settings.inbox)
    if placed.name_taken:
        say("cli.demo.name_taken", n=len(placed.name_taken))
        for path in placed.name_taken[:LISTED_NAMES]:
            say("cli.demo.name_taken_file", name=path.name)
        if len(placed.name_taken) > LISTED_NAMES:
            say("cli.demo.more", n=len(placed.name_taken) - LISTED_NAMES)
    reviewer = ensure_demo_reviewer(catalogue, actor=actor)
    senior = ensure_demo_account(catalogue, DEMO_SENIOR, "senior_reviewer", "Demo senior reviewer", actor=actor)
    for login, created in ((reviewer, N_("cli.demo.reviewer_created")), (senior, N_("cli.demo.senior_created"))):
        if login.password is not None:
            say(created, name=login.name, password=login.password)
        else:
            say("cli.demo.reviewer_kept", name=login.name)
            if not login.active:
                say("cli.demo.reviewer_disabled", name=login.name)
