"""`relicflow audit`: is the review record still evidence? (see ``relicflow.audit_record``)."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from relicflow.errors import RelicflowError

audit_app = typer.Typer(help="Check the sealed review record (audit chain, anchors, decisions, statuses).", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="The whole report as JSON."),
    anchor: bool = typer.Option(True, "--anchor/--no-anchor", help="When the record holds, anchor its head in the object store."),
) -> None:
    """Verify seals, links and anchors of the audit chain and every status and decision against it; exit 1 on any problem."""
    from relicflow.audit_record import verify_record, write_anchor
    from relicflow.catalogue import Catalogue
    from relicflow.cli import _settings, _t, console
    from relicflow.cli_time import local_times_in, shown_time
    from relicflow.storage import open_store

    settings = _settings(ctx)
    catalogue = Catalogue.from_settings(settings)
    try:
        catalogue.migrate()
        store = open_store(settings)
        report = verify_record(catalogue, store)
        if report.ok and anchor:
            write_anchor(catalogue, store, reason="relicflow audit verify")
    except RelicflowError as exc:
        console.print(_t("cli.error", settings, message=exc))
        raise typer.Exit(1) from exc
    finally:
        catalogue.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(0 if report.ok else 1)
    entries = report.head.entries if report.head else 0
    zone = settings.time_zone
    console.print(_t("cli.audit.checked_at", settings, when=shown_time(report.checked_at, zone, seconds=True)))
    if report.ok:
        console.print(_t("cli.audit.ok", settings, entries=entries, anchors=report.anchors_checked))
        return
    console.print(_t("cli.audit.broken", settings))
    if report.chain_break is not None:
        console.print(_t("cli.audit.first_broken", settings, entry=report.chain_break.entry_id,
                         why=_t(f"cli.audit.why.{report.chain_break.reason}", settings),
                         detail=local_times_in(report.chain_break.detail, zone)))
    for problem in report.anchor_problems:
        console.print(_t("cli.audit.anchor_problem", settings, detail=local_times_in(problem, zone)))
    for d in report.disagreements:
        console.print(_t("cli.audit.disagreement", settings, item=d.item_id, what=_t(f"cli.audit.code.{d.code}", settings),
                         detail=local_times_in(d.detail, zone)))
    console.print(_t("cli.audit.what_now", settings))
    raise typer.Exit(1)


@audit_app.command("accept-restore")
def audit_accept_restore(
    ctx: typer.Context,
    reason: str = typer.Option(..., "--reason", help="Which backup was restored, and why (kept in the record)."),
    actor: Optional[str] = typer.Option(None, "--by", help="Who accepts it (default: your login name)."),
) -> None:
    """After restoring the catalogue from a backup: record, sealed, which anchored entries were lost with it."""
    from relicflow.audit_record import accept_restore
    from relicflow.catalogue import Catalogue
    from relicflow.cli import _settings, _t, console
    from relicflow.cli_users import operator
    from relicflow.storage import open_store

    settings = _settings(ctx)
    catalogue = Catalogue.from_settings(settings)
    try:
        catalogue.migrate()
        lost = accept_restore(catalogue, open_store(settings), actor=operator(actor), reason=reason)
    except (RelicflowError, ValueError) as exc:
        console.print(_t("cli.error", settings, message=exc))
        raise typer.Exit(1) from exc
    finally:
        catalogue.dispose()
    if not lost:
        console.print(_t("cli.audit.nothing_lost", settings))
        return
    console.print(_t("cli.audit.restore_accepted", settings, n=len(lost), first=min(a.entry_id for a in lost),
                     last=max(a.entry_id for a in lost)))
