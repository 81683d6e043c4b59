"""`relicflow reconcile` and `relicflow batches …`: the operator's side of the issuer handoff.

Registered on the main command by :func:`register`; text in zh-CN (default) and en lives in
the gettext catalogues (relicflow/locale, ids ``cli.reconcile.*``, ``cli.batches.*``).
"""

from __future__ import annotations

import os
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from relicflow.errors import RelicflowError
from relicflow.cli_time import local_times_in
from relicflow.local_time import format_local

batches_app = typer.Typer(help="Mint batches: list them, release the items of one the issuer refused.", no_args_is_help=True)


def _operator(by: Optional[str]) -> str:
    return by or os.environ.get("USER") or "unknown"


@batches_app.command("list")
def batches_list(ctx: typer.Context) -> None:
    """Every mint batch: when it was made, status, items sent, items still batched in it, tokens recorded, last error."""
    from relicflow import cli
    from relicflow.catalogue import Catalogue

    settings = cli._settings(ctx)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    rows = catalogue.batch_overview()
    catalogue.dispose()
    if not rows:
        cli.console.print(cli._t("cli.batches.none", settings))
        return
    table = Table()
    for col in ("batch", "created", "status", "items", "batched", "tokens", "attempts", "error"):
        table.add_column(cli._t(f"cli.batches.col.{col}", settings))
    for r in rows:
        table.add_row(escape(r["batch_ref"]), format_local(r["created_at"], settings.time_zone),
                      cli._t(f"cli.batches.status.{r['status']}", settings), str(r["items"]),
                      str(r["batched"]), str(r["tokens"]), str(r["attempts"]), escape(r["last_error"].splitlines()[0] if r["last_error"] else ""))
    cli.console.print(table)


@batches_app.command("release")
def batches_release(
    ctx: typer.Context,
    batch_ref: str = typer.Argument(..., help="The batch (see `relicflow batches list`)."),
    to: str = typer.Option(..., "--to", help="approved (a later mint sends them again) or rejected."),
    reason: str = typer.Option(..., "--reason", help="Why; kept in the audit log."),
    by: Optional[str] = typer.Option(None, "--by", help="Your name for the audit log (default: the login name)."),
) -> None:
    """Return the items of a batch the issuer will not mint to approved or rejected (audited)."""
    from relicflow import cli
    from relicflow.catalogue import Catalogue, ItemStatus

    settings = cli._settings(ctx)
    if to not in ("approved", "rejected") or not reason.strip():
        cli.console.print(cli._t("cli.batches.release_usage", settings))
        raise typer.Exit(2)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    try:
        items = catalogue.release_batch(batch_ref, to=ItemStatus(to), actor=f"cli:{_operator(by)}", reason=reason)
    except RelicflowError as exc:
        cli.console.print(cli._t("cli.error", settings, message=exc))
        raise typer.Exit(1) from exc
    finally:
        catalogue.dispose()
    cli.console.print(cli._t("cli.batches.released", settings, batch=batch_ref, n=len(items),
                             items=", ".join(f"#{i}" for i in items) or "-", status=cli._t(f"web.status.{to}", settings)))


def reconcile(
    ctx: typer.Context,
    by: Optional[str] = typer.Option(None, "--by", help="Your name for the audit log (default: the login name)."),
) -> None:
    """Compare the catalogue with the issuer's ledger, record what the issuer holds, report the rest.

    Exit code 0: no differences; 1: differences remain (listed); 2: the issuer cannot be asked.
    """
    from relicflow import cli

    settings = cli._settings(ctx)  # before anything imports Prefect, which freezes its settings
    from flows.reconcile import reconcile as run_reconcile
    from relicflow.catalogue import Catalogue
    from relicflow.issuer_client import IssuerClient
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    try:
        with IssuerClient.from_settings(settings) as client:
            report = run_reconcile(catalogue, client, actor=f"cli:{_operator(by)}")
    except RelicflowError as exc:
        cli.console.print(cli._t("cli.reconcile.failed", settings, message=exc))
        raise typer.Exit(2) from exc
    finally:
        catalogue.dispose()
    cli.console.print(cli._t("cli.reconcile.summary", settings, items=report.items, tokens=report.issuer_tokens,
                             issuer=settings.effective_issuer_url))
    for finding in report.repaired:
        cli.console.print(cli._t("cli.reconcile.repaired", settings, message=local_times_in(finding.message(settings.locale), settings.time_zone)))
    if not report.differences:
        cli.console.print(cli._t("cli.reconcile.none", settings))
        return
    cli.console.print(cli._t("cli.reconcile.differences", settings, n=len(report.differences)))
    for finding in report.differences:
        cli.console.print(cli._t("cli.reconcile.line", settings, code=finding.code,
                                 message=local_times_in(finding.message(settings.locale), settings.time_zone)))
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `reconcile` and `batches` to the main `relicflow` command."""
    app.add_typer(batches_app, name="batches")
    app.command("reconcile")(reconcile)
