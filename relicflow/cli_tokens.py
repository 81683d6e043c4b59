"""`relicflow tokens …`: personal tokens for the review app's JSON API (create, list, revoke).

A token acts as its user with the user's role; it is printed once, when made. Creating and revoking
are audited with the operator's name, as the `users` commands are.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Optional

import typer
from rich.table import Table

from relicflow.cli_users import ACTOR_HELP, _catalogue, _say, console, operator
from relicflow.i18n import t
from relicflow.local_time import format_local

tokens_app = typer.Typer(help="Personal tokens for the review app's JSON API.", no_args_is_help=True)


@tokens_app.command("create")
def tokens_create(ctx: typer.Context, name: str = typer.Argument(..., help="User name the token acts as."),
                  label: str = typer.Option("", "--label", help="What the token is for (e.g. the collection system)."),
                  days: Optional[int] = typer.Option(None, "--days", min=1, max=3650, help="Expire after this many days (default: never)."),
                  actor: Optional[str] = typer.Option(None, "--actor", help=ACTOR_HELP)) -> None:
    """Make a token for a user; it is shown once."""
    with _catalogue(ctx, name) as (settings, catalogue):
        token_id, token = catalogue.create_api_token(name, label=label, expires_in=timedelta(days=days) if days else None,
                                                     actor=operator(actor))
    _say(settings, "cli.tokens.created", id=token_id, name=name)
    sys.stdout.write(token + "\n")  # alone on stdout, so `relicflow tokens create x > file` keeps only the token


@tokens_app.command("list")
def tokens_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="The list as JSON.")) -> None:
    """Every token: whose, what for, when made, last used, expired or revoked (never the token itself)."""
    with _catalogue(ctx) as (settings, catalogue):
        tokens = catalogue.api_tokens()
    if as_json:
        def iso(value: object) -> str | None:
            return value.isoformat() if value is not None else None  # type: ignore[attr-defined]
        sys.stdout.write(json.dumps([{"id": k.id, "username": k.username, "label": k.label, "created_at": iso(k.created_at),
                                      "expires_at": iso(k.expires_at), "revoked_at": iso(k.revoked_at),
                                      "last_used_at": iso(k.last_used_at)} for k in tokens], ensure_ascii=False, indent=2) + "\n")
        return
    if not tokens:
        _say(settings, "cli.tokens.none")
        return
    table = Table()
    for col in ("id", "user", "label", "created", "expires", "last_used", "revoked"):
        table.add_column(t(f"cli.tokens.col.{col}", settings.locale))
    never = t("cli.users.never", settings.locale)
    for k in tokens:
        table.add_row(str(k.id), k.username, k.label, format_local(k.created_at, settings.time_zone),
                      format_local(k.expires_at, settings.time_zone) if k.expires_at else "—",
                      format_local(k.last_used_at, settings.time_zone) if k.last_used_at else never,
                      format_local(k.revoked_at, settings.time_zone) if k.revoked_at else "—")
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: int = typer.Argument(..., help="The token's number (see `relicflow tokens list`)."),
                  actor: Optional[str] = typer.Option(None, "--actor", help=ACTOR_HELP)) -> None:
    """Stop a token working, at once."""
    with _catalogue(ctx) as (settings, catalogue):
        revoked = catalogue.revoke_api_token(token_id, actor=operator(actor))
    if not revoked:
        _say(settings, "cli.tokens.not_live", id=token_id)
        raise typer.Exit(1)
    _say(settings, "cli.tokens.revoked", id=token_id)
