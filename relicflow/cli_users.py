"""`relicflow users …`: list review-app accounts, disable and enable them, reset a password, end sessions.

Every change is audited with the operator's name (``--actor``, else the login name of whoever runs the
command) as ``cli:<name>``. A password reset and a disable end the user's sessions at once.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from relicflow.errors import UnknownUser
from relicflow.i18n import N_, t
from relicflow.local_time import format_local
from relicflow.settings import Settings

if TYPE_CHECKING:
    from relicflow.catalogue import Catalogue

users_app = typer.Typer(help="Manage review-app users.", no_args_is_help=True)
console = Console(soft_wrap=True)

MIN_PASSWORD_CHARS = 10
ACTOR_HELP = "Who is making the change, for the audit log (default: your login name)."


def operator_name(actor: str | None = None) -> str:
    """The person running the CLI: ``actor`` as given, else the login name ("unknown" when there is none)."""
    if not actor:
        try:
            actor = getpass.getuser()
        except Exception:  # no USER/LOGNAME and no passwd entry (some containers)
            actor = "unknown"
    return actor


def operator(actor: str | None = None) -> str:
    """The audit log's name for the person running the CLI."""
    return f"cli:{operator_name(actor)}"


def _say(settings: Settings, key: str, **kwargs: Any) -> None:
    console.print(t(key, settings.locale, **{k: escape(str(v)) for k, v in kwargs.items()}))


@contextmanager
def _catalogue(ctx: typer.Context, name: str | None = None) -> Iterator[tuple[Settings, Catalogue]]:
    """The migrated catalogue of this data dir; an unknown user name ends the command with exit code 1."""
    from relicflow.catalogue import Catalogue
    from relicflow.cli import _settings

    settings = _settings(ctx)
    catalogue = Catalogue.from_settings(settings)
    try:
        catalogue.migrate()
        yield settings, catalogue
    except UnknownUser as exc:
        _say(settings, "cli.users.unknown", name=exc.username if name is None else name)
        raise typer.Exit(1) from exc
    finally:
        catalogue.dispose()


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="The list as JSON.")) -> None:
    """Every user: role, active or disabled, live sessions, last sign-in."""
    with _catalogue(ctx) as (settings, catalogue):
        accounts = catalogue.accounts()
    if as_json:
        rows = [{"username": a.username, "display_name": a.display_name, "role": a.role, "active": a.active,
                 "sessions": a.sessions, "last_sign_in": a.last_sign_in.isoformat() if a.last_sign_in else None}
                for a in accounts]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if not accounts:
        _say(settings, "cli.users.none")
        return
    table = Table()
    for col in ("user", "name", "role", "active", "sessions", "last_sign_in"):
        table.add_column(t(f"cli.users.col.{col}", settings.locale))
    for a in accounts:
        table.add_row(escape(a.username), escape(a.display_name), t(f"web.role.{a.role}", settings.locale),
                      t(N_("cli.users.active") if a.active else N_("cli.users.disabled"), settings.locale), str(a.sessions),
                      format_local(a.last_sign_in, settings.time_zone) if a.last_sign_in else t("cli.users.never", settings.locale))
    console.print(table)


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: str = typer.Argument(..., help="User name."),
                  actor: Optional[str] = typer.Option(None, "--actor", help=ACTOR_HELP)) -> None:
    """Stop a user signing in and end their sessions (their decisions stay in the record)."""
    with _catalogue(ctx, name) as (settings, catalogue):
        ended = catalogue.disable_user(name, actor=operator(actor))
    _say(settings, "cli.users.disabled_now", name=name, n=ended)


@users_app.command("enable")
def users_enable(ctx: typer.Context, name: str = typer.Argument(..., help="User name."),
                 actor: Optional[str] = typer.Option(None, "--actor", help=ACTOR_HELP)) -> None:
    """Let a disabled user sign in again."""
    with _catalogue(ctx, name) as (settings, catalogue):
        changed = catalogue.enable_user(name, actor=operator(actor))
    _say(settings, N_("cli.users.enabled_now") if changed else N_("cli.users.enabled_already"), name=name)


@users_app.command("end-sessions")
def users_end_sessions(ctx: typer.Context, name: str = typer.Argument(..., help="User name."),
                       actor: Optional[str] = typer.Option(None, "--actor", help=ACTOR_HELP)) -> None:
    """Sign a user out everywhere (e.g. a lost or shared computer)."""
    with _catalogue(ctx, name) as (settings, catalogue):
        ended = catalogue.end_sessions(name, actor=operator(actor))
    _say(settings, "cli.users.sessions_ended", name=name, n=ended)


def _new_password(settings: Settings, from_stdin: bool) -> str:
    """The new password, typed twice without echo, or one line of standard input."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _say(settings, "cli.users.no_stdin")
            raise typer.Exit(2)
    else:
        password = click.prompt(t("cli.users.prompt_password", settings.locale), hide_input=True, default="",
                                show_default=False)
        again = click.prompt(t("cli.users.prompt_again", settings.locale), hide_input=True, default="", show_default=False)
        if password != again:
            _say(settings, "cli.users.passwords_differ")
            raise typer.Exit(2)
    if len(password) < MIN_PASSWORD_CHARS:
        _say(settings, "cli.users.password_short", min=MIN_PASSWORD_CHARS)
        raise typer.Exit(2)
    return password


@users_app.command("reset-password")
def users_reset_password(ctx: typer.Context, name: str = typer.Argument(..., help="User name."),
                         password_stdin: bool = typer.Option(False, "--password-stdin",
                                                             help="Read the new password as one line from standard input."),
                         actor: Optional[str] = typer.Option(None, "--actor", help=ACTOR_HELP)) -> None:
    """Set a new password (typed twice, not shown) and end the user's sessions."""
    from relicflow.passwords import hash_password

    with _catalogue(ctx, name) as (settings, catalogue):
        account = catalogue.account(name)
        if account is None:
            raise UnknownUser(name)
        ended = catalogue.set_password(name, hash_password(_new_password(settings, password_stdin)), actor=operator(actor))
    _say(settings, "cli.users.password_set", name=name, n=ended)
    if not account.active:
        _say(settings, "cli.users.password_set_disabled")
