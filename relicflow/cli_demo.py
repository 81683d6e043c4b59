"""`relicflow init --demo` (what `make demo` runs): safe to run again and again.

The sample files never replace anything in the inbox, and an existing demo reviewer keeps its password,
so a second `make demo` neither destroys staff's files nor signs a reviewer out of a working login.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relicflow.settings import Settings

if TYPE_CHECKING:
    from relicflow.catalogue import Catalogue

DEMO_REVIEWER = "reviewer"
LISTED_NAMES = 20  # skipped samples named one by one, up to this many


@dataclass(frozen=True)
class DemoLogin:
    name: str
    password: str | None  # set only when the account was created now: an existing one keeps its own
    active: bool


def ensure_demo_reviewer(catalogue: Catalogue, *, actor: str) -> DemoLogin:
    """The demo reviewer, created with a new password if missing; an existing one is left exactly as it is."""
    from relicflow.passwords import generate_password, hash_password

    existing = catalogue.account(DEMO_REVIEWER)
    if existing is not None:
        return DemoLogin(DEMO_REVIEWER, None, existing.active)
    password = generate_password()
    catalogue.add_user(DEMO_REVIEWER, hash_password(password), "reviewer", display_name="Demo reviewer", actor=actor)
    return DemoLogin(DEMO_REVIEWER, password, True)


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
    login = ensure_demo_reviewer(catalogue, actor=actor)
    if login.password is not None:
        say("cli.demo.reviewer_created", name=login.name, password=login.password)
    else:
        say("cli.demo.reviewer_kept", name=login.name)
        if not login.active:
            say("cli.demo.reviewer_disabled", name=login.name)
