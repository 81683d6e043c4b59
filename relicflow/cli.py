"""The `relicflow` command: set-up, one-off runs of the flows, listings, and `serve` for everything.

Prefect is configured per data dir (``PREFECT_HOME`` under it); when `relicflow serve` of *this* data dir
is running, the one-off commands report to its Prefect server (recorded in the data dir, see
relicflow/installation.py) so their runs show up in the UI and start the review gate; otherwise to a
temporary server. Every command but `init` refuses to run outside an installation.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from relicflow.cli_audit import audit_app
from relicflow.cli_help import LocalisedGroup
from relicflow.cli_time import shown_time
from relicflow.cli_tokens import tokens_app
from relicflow.cli_users import operator, operator_name, users_app
from relicflow.errors import IngestStopped, RelicflowError
from relicflow.settings import Settings, load_settings

app = typer.Typer(help="relicflow: museum relic scans → review gate → regulated digital collections.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=LocalisedGroup)  # help in the chosen language (cli_help.py)
app.add_typer(users_app, name="users")  # list, disable, enable, reset-password, end-sessions (relicflow/cli_users.py); add below
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")  # API tokens (relicflow/cli_tokens.py)
console = Console(soft_wrap=True)  # long paths stay whole, so they can be copied


def _t(key: str, settings: Settings, **kwargs: Any) -> str:
    from relicflow.i18n import t

    # values are user data (paths, file names, error messages): never read them as console markup
    return t(key, settings.locale, **{k: escape(str(v)) for k, v in kwargs.items()})


def prefect_environment(settings: Settings, *, identity: str | None = None) -> dict[str, str]:
    """Prefect settings for this data dir. PREFECT_API_URL points at the server `relicflow serve` runs for
    this catalogue when it is alive (``identity`` given; see relicflow/installation.py), never at whatever
    answers on the port; without it Prefect starts a temporary server. A PREFECT_API_URL already set wins."""
    from relicflow.installation import own_server

    env = {
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        # a temporary server on a busy machine can take longer than Prefect's 20 s to answer
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"),
    }
    if identity is not None and not os.environ.get("PREFECT_API_URL"):
        url = own_server(settings, identity)
        if url:
            env["PREFECT_API_URL"] = url
    return env


def _settings(ctx: typer.Context, *, runs_flows: bool = False, require_installation: bool = True) -> Settings:
    """This command's settings, after checking the data dir is an installation (except for `init`) and
    setting Prefect's environment, which must happen before anything imports Prefect. Says on stderr which
    data dir (and, for commands that run flows, which Prefect server) it uses; stdout stays clean for --json."""
    from relicflow.i18n import t
    from relicflow.errors import NotAnInstallation
    from relicflow.installation import catalogue_identity
    from relicflow.installation import require_installation as check_installation

    settings: Settings = ctx.obj
    if require_installation:
        try:
            check_installation(settings)
        except NotAnInstallation as exc:  # said in both languages: whoever is lost may not have chosen one
            typer.echo(f"{exc.message_zh}\n{exc.message_en}", err=True)
            raise typer.Exit(2) from exc
    identity = catalogue_identity(settings) if runs_flows else None
    ctx.meta["relicflow.catalogue_id"] = identity  # the commands that run flows pass it on (see _catalogue_id)
    for key, value in prefect_environment(settings, identity=identity).items():
        os.environ.setdefault(key, value)
    line = t("cli.install.data_dir", settings.locale, data_dir=settings.data_dir)
    if runs_flows:
        api = os.environ.get("PREFECT_API_URL")
        line += " · " + (t("cli.install.prefect_temporary", settings.locale) if not api
                         else t("cli.install.prefect_server", settings.locale, url=api))
    typer.echo(line, err=True)
    return settings


def _catalogue_id(ctx: typer.Context) -> str:
    """The identity of this data dir's catalogue, read by ``_settings(ctx, runs_flows=True)``."""
    identity = ctx.meta.get("relicflow.catalogue_id")
    assert identity, "_settings(ctx, runs_flows=True) first"
    return str(identity)


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="RELICFLOW_DATA_DIR", help="Where relicflow keeps its data."),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh-CN (default) or en."),
) -> None:
    try:
        ctx.obj = load_settings(data_dir=data_dir, locale=lang)
    except Exception as exc:  # pydantic's message names the bad setting
        console.print(f"[red]relicflow settings are not valid:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if data_dir is not None:  # children (serve, flows) read the same data dir
        os.environ["RELICFLOW_DATA_DIR"] = str(ctx.obj.data_dir)
    if lang is not None:
        os.environ["RELICFLOW_LOCALE"] = ctx.obj.locale


@app.command()
def init(
    ctx: typer.Context,
    admin: str = typer.Option("admin", help="User name of the first administrator."),
    demo: bool = typer.Option(False, "--demo", help="Put the bundled sample scans in the inbox (never over existing files) and create a demo reviewer (an existing one keeps its password)."),
) -> None:
    """Create the data dir, inbox and catalogue database, and the first administrator."""
    from relicflow.catalogue import Catalogue
    from relicflow.passwords import generate_password, hash_password

    settings = _settings(ctx, require_installation=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    console.print(_t("cli.init.done", settings, data_dir=settings.data_dir, inbox=settings.inbox, db=settings.database_url))
    if catalogue.count_users() == 0:
        password = generate_password()
        catalogue.add_user(admin, hash_password(password), "admin", actor=operator())
        console.print(_t("cli.init.admin", settings, name=admin, password=password))
    else:
        console.print(_t("cli.init.has_users", settings))
    if demo:
        from relicflow.cli_demo import set_up_demo

        set_up_demo(settings, catalogue, actor=operator(), say=lambda key, **kw: console.print(_t(key, settings, **kw)))
    catalogue.dispose()


@app.command()
def ingest(
    ctx: typer.Context,
    path: Optional[Path] = typer.Argument(None, help="Folder of scans (default: the configured inbox)."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Accession sheet (CSV) exported from the collection system."),
    by: Optional[str] = typer.Option(None, "--by", help="Who is running it, as their review-app user name (default: your "
                                     "login name); they may not approve what this run brings in."),
) -> None:
    """Run the ingest flow once over a folder of scans, with a progress bar and a summary.

    Files that changed in the last inbox_settle_s seconds (still being copied) are left for the next run,
    as in scheduled runs. Exit code 0: the run finished (whatever each file's outcome); 1: it could not.
    """
    import uuid

    from relicflow.catalogue import Catalogue

    settings = _settings(ctx, runs_flows=True)
    inbox = (path or settings.inbox).expanduser().resolve()
    if not inbox.is_dir():
        console.print(_t("cli.ingest.no_inbox", settings, path=inbox))
        raise typer.Exit(1)
    from prefect import tags

    from flows.ingest import ingest_flow
    from relicflow.installation import catalogue_tag

    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    identity = _catalogue_id(ctx)
    label = f"cli-{uuid.uuid4().hex}"
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with tags(catalogue_tag(identity)):
                result["summary"] = ingest_flow(inbox=str(inbox), sheet=str(sheet) if sheet else None, settings=settings,
                                                label=label, catalogue_id=identity, operator=operator_name(by))
        except BaseException as exc:  # reported below, in the main thread
            result["error"] = exc

    worker = threading.Thread(target=run, name="ingest-flow", daemon=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(_t("cli.ingest.preparing", settings), total=None)
        worker.start()
        while worker.is_alive():
            _show_progress(bar, task, catalogue.ingest_run_by_label(label), settings)
            worker.join(0.5)
        _show_progress(bar, task, catalogue.ingest_run_by_label(label), settings)
    catalogue.dispose()
    if "error" in result:
        error = result["error"]
        message = error.message(settings.locale) if isinstance(error, IngestStopped) else str(error)
        console.print(_t("cli.ingest.stopped", settings, message=message))
        raise typer.Exit(1)
    _print_ingest_summary(result["summary"], settings)


def _show_progress(bar: Progress, task: Any, run: Any, settings: Settings) -> None:
    if run is None or not run.files_total and run.finished_at is None:
        return
    bar.update(task, description=_t("cli.ingest.scanning", settings, n=run.files_total), total=run.files_total,
               completed=run.files_done)


def _print_ingest_summary(s: dict[str, Any], settings: Settings) -> None:
    console.print(_t("cli.ingest.summary", settings, files=s["files"], new=s["new"], awaiting=s["awaiting_review"],
                     quarantined=s["quarantined"], failed=s["failed"], known=s["already_known"],
                     skipped=s["skipped_total"], errors=s["errors"]))
    for failure in s["failures"]:
        console.print(_t("cli.ingest.failed_item", settings, item=failure["item"], file=failure["file"],
                         error=failure["error"], attempts=failure["attempts"], max=settings.ingest_max_attempts))
    for problem in s["sheet_problems"]:
        console.print(_t("cli.ingest.sheet_problem", settings, problem=problem))
    if s["skipped_total"]:
        console.print(_t("cli.ingest.skipped", settings, n=s["skipped_total"]))
        for entry in s["skipped_files"][:50]:
            console.print(f"  {escape(entry['file'])}: {_t('cli.skip.' + entry['reason'], settings)}")
        if len(s["skipped_files"]) > 50:
            console.print(f"  … (+{len(s['skipped_files']) - 50})")
    if s["unmatched_sheet_rows"]:
        console.print(_t("cli.ingest.unmatched", settings, numbers=", ".join(s["unmatched_sheet_rows"])))
    if s.get("joined_objects"):
        console.print(_t("cli.ingest.joined", settings, n=s["joined_objects"]))
    for key in ("resubmitted", "records_updated", "additions"):
        if s.get(key):
            console.print(_t(f"cli.ingest.{key}", settings, items=", ".join(f"#{i}" for i in s[key])))


@app.command()
def retry(
    ctx: typer.Context,
    item_ids: list[int] = typer.Argument(..., help="Ids of failed or quarantined items (see `relicflow items`)."),
) -> None:
    """Let the next ingest run process failed or quarantined items again (e.g. after raising a limit)."""
    from relicflow.catalogue import Catalogue

    settings = _settings(ctx)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    refused = []
    for item_id in item_ids:
        try:
            ok = catalogue.requeue(item_id, actor=f"cli:{os.environ.get('USER', 'unknown')}", reason="retry_requested",
                                   reset_attempts=True)
        except RelicflowError:
            ok = False
        (console.print(_t("cli.retry.queued", settings, item=item_id)) if ok else refused.append(item_id))
    catalogue.dispose()
    for item_id in refused:
        console.print(_t("cli.retry.refused", settings, item=item_id))
    if refused:
        raise typer.Exit(1)


@app.command()
def items(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", help="Only items in this status, named in English or Chinese (e.g. awaiting_review, quarantined, 待审核, 已隔离)."),
    as_json: bool = typer.Option(False, "--json", help="Every item's full catalogue record as JSON (with token id, chain and batch)."),
) -> None:
    """List catalogue items, quarantined files included."""
    from relicflow.catalogue import Catalogue
    from relicflow.catalogue.token_records import token_records
    from relicflow.catalogue.records import item_record
    from relicflow.cli_items import items_json, print_items_table, status_from_name
    from relicflow.errors import BadCommandInput

    settings = _settings(ctx)
    try:
        wanted = status_from_name(status).value if status is not None else None
    except BadCommandInput as exc:
        console.print(_t("cli.error", settings, message=exc.message(settings.locale)))
        raise typer.Exit(2) from exc
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    names = catalogue.usernames()
    tokens = token_records(catalogue, status=wanted)
    listed = catalogue.items(status=wanted)
    floors = catalogue.decision_floors([i.id for i in listed])  # decisions an administrator's reopen set aside
    records = [item_record(i, reviewer_names=names, decision_floor=floors.get(i.id, 0)).model_copy(update={"token": tokens.get(i.id)})
               for i in listed]
    catalogue.dispose()
    if as_json:
        sys.stdout.write(items_json(records))
        return
    if not records:
        console.print(_t("cli.items.none", settings))
        return
    print_items_table(console, records, settings)
    if any(r.accession_number_source == "file_name" for r in records):
        console.print(_t("cli.items.guessed_note", settings))


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option(..., "--role", help="digitiser, reviewer, senior_reviewer, admin or auditor."),
    display_name: str = typer.Option("", "--display-name", help="Name shown in the review app."),
) -> None:
    """Add a user; prints a generated password once."""
    from relicflow.catalogue import Catalogue, Role
    from relicflow.passwords import generate_password, hash_password

    settings = _settings(ctx)
    roles = [r.value for r in Role]
    if role not in roles:
        console.print(_t("cli.users.bad_role", settings, roles=", ".join(roles)))
        raise typer.Exit(2)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    password = generate_password()
    try:
        catalogue.add_user(name, hash_password(password), role, display_name=display_name, actor=operator())
    except RelicflowError as exc:
        console.print(_t("cli.error", settings, message=exc))
        raise typer.Exit(1) from exc
    finally:
        catalogue.dispose()
    console.print(_t("cli.users.added", settings, name=name, role=role, password=password))


@app.command()
def mint(ctx: typer.Context) -> None:
    """Run the mint flow once: send every approved item to the issuer."""
    settings = _settings(ctx, runs_flows=True)  # before anything imports Prefect, which freezes its settings
    from prefect import tags

    from flows.mint import mint_flow
    from relicflow.installation import catalogue_tag

    identity = _catalogue_id(ctx)
    try:
        with tags(catalogue_tag(identity)):
            result = mint_flow(settings=settings, catalogue_id=identity)
    except RelicflowError as exc:
        console.print(_t("cli.error", settings, message=exc))
        raise typer.Exit(1) from exc
    console.print(_t("cli.mint.summary", settings, minted=result["minted"], batches=len(result["batches"]), failed=len(result["failed"])))
    if result["from_issuer"]:
        console.print(_t("cli.mint.from_issuer", settings, n=result["from_issuer"]))
    if result.get("held"):
        console.print(_t("cli.mint.held", settings, n=len(result["held"])))
    if result["refused_holding_items"]:
        console.print(_t("cli.mint.refused", settings, batches=", ".join(result["refused_holding_items"])))
    if result["failed"] or result["refused_holding_items"]:
        raise typer.Exit(1)


@app.command()
def fixity(
    ctx: typer.Context,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Objects to re-check (default: the fixity_batch_size setting)."),
    as_json: bool = typer.Option(False, "--json", help="The run's counts and every problem object as JSON."),
) -> None:
    """Re-check stored objects against their SHA-256 and remove stale temporary files; exit 1 on any problem."""
    settings = _settings(ctx, runs_flows=True)  # before anything imports Prefect, which freezes its settings
    from prefect import tags

    from flows.fixity import fixity_flow
    from relicflow.installation import catalogue_tag

    identity = _catalogue_id(ctx)
    try:
        with tags(catalogue_tag(identity)):
            result = fixity_flow(settings=settings, limit=limit, catalogue_id=identity)
    except RelicflowError as exc:
        console.print(_t("cli.error", settings, message=exc))
        raise typer.Exit(1) from exc
    problems = result["problems"]
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(1 if problems else 0)
    console.print(_t("cli.fixity.summary", settings, checked=result["checked"], ok=result["ok"], missing=result["missing"],
                     changed=result["changed"], unreadable=result["unreadable"], removed=result["temporaries_removed"]))
    inventory = result["inventory"]
    console.print(_t("cli.fixity.coverage", settings, total=sum(inventory.values()), unchecked=inventory.get("unchecked", 0)))
    if result["hash_adopted"]:
        console.print(_t("cli.fixity.adopted", settings, n=result["hash_adopted"]))
    if not problems:
        console.print(_t("cli.fixity.none", settings))
        return
    console.print(_t("cli.fixity.problems", settings, n=len(problems)))
    for p in problems:  # one line per object, never wrapped, so keys can be copied whole
        console.print(_t("cli.fixity.line", settings, outcome=_t(f"web.fixity.outcome.{p['outcome']}", settings),
                         role=_t(f"web.fixity.role.{p['role']}", settings), item=p["item"], name=p["key"]))
        console.print(_t("cli.fixity.line_detail", settings, explain=_t(f"web.fixity.explain.{p['outcome']}", settings),
                         detail=p["detail"], checked=shown_time(p["checked_at"], settings.time_zone, seconds=True)))
    raise typer.Exit(1)


@app.command("sandbox-issuer")
def sandbox_issuer(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", help="Port to listen on (default: the sandbox_issuer_port setting)."),
    fail_first: int = typer.Option(0, "--fail-first", help="Answer the first N mint requests with 503, to watch retries."),
) -> None:
    """Run the sandbox issuer (the reference implementation of the issuer contract)."""
    from relicflow.sandbox_issuer import run_sandbox_issuer

    run_sandbox_issuer(_settings(ctx), port=port, fail_first=fail_first)


@app.command()
def review(ctx: typer.Context) -> None:
    """Run only the review web app."""
    settings = _settings(ctx, runs_flows=True)  # before anything imports Prefect, which freezes its settings
    from relicflow.review_server import serve_review

    serve_review(settings)


@app.command()
def serve(ctx: typer.Context) -> None:
    """Start Prefect, the scheduled deployments, the review app and (unless configured) the sandbox issuer."""
    from relicflow.serve import serve_everything

    settings = _settings(ctx)
    raise typer.Exit(serve_everything(settings, console=console))


@app.command(hidden=True)
def deployments(ctx: typer.Context) -> None:
    """Register and run the scheduled deployments (started by `relicflow serve`)."""
    from relicflow.serve import run_deployments

    run_deployments(_settings(ctx, runs_flows=True))


from relicflow.cli_issuer import register as _register_issuer_commands  # noqa: E402 - needs the helpers above

_register_issuer_commands(app)

if __name__ == "__main__":
    app()
