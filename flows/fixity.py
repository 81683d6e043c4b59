"""The fixity flow: are the stored originals, derivatives and metadata documents still what was stored?

Each run removes the temporary files of interrupted writes older than ``stale_temporary_age_s`` (at once
when their writer process is known to have ended on this host: LocalStore names it in them), then
re-hashes up to ``fixity_batch_size`` objects from the inventory, never-checked and least recently
checked first, so a store too large for one run is covered by the runs that follow. Outcomes go to the
catalogue (problems and recoveries as audit entries), missing or changed objects to a Prefect table
artifact; the run itself is an audit entry that the admin page reads as "last run".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from relicflow.catalogue import Catalogue, StoredObjectRef
from relicflow.catalogue.fixity import FixityResult, FixitySummary
from relicflow.catalogue.models import utcnow
from relicflow.errors import StorageError
from relicflow.installation import check_catalogue
from relicflow.settings import Settings, load_settings
from relicflow.storage import ObjectStore, TemporaryCleanup, open_store
from tasks.fixity import check_objects, split_at_outage

PAGE_SIZE = 200  # objects per task: one catalogue transaction of results each, so a killed run keeps its progress
MAX_LISTED_TEMPORARIES = 100


@task(name="remove-stale-temporaries", cache_policy=NO_CACHE)
def remove_stale_temporaries(store: ObjectStore, started_before: datetime) -> TemporaryCleanup:
    return store.remove_stale_temporaries(started_before=started_before)


@task(name="check-stored-objects", cache_policy=NO_CACHE, task_run_name="check {first_key} (+{more})")
def check_page(store: ObjectStore, refs: list[StoredObjectRef], workers: int, first_key: str, more: int) -> list[FixityResult]:
    return check_objects(store, refs, workers=workers)


def _clean_temporaries(catalogue: Catalogue, store: ObjectStore, started_before: datetime, run: dict[str, Any]) -> None:
    cleanup = remove_stale_temporaries(store, started_before)
    run["temporaries_removed"], run["temporaries_kept"] = len(cleanup.removed), cleanup.kept
    if cleanup.removed:
        get_run_logger().info("removed %d stale temporary file(s) of interrupted writes", len(cleanup.removed))
        with catalogue.session() as s:
            catalogue.audit(s, actor="fixity", action="storage:temporaries-removed",
                            details={"store": store.url, "count": len(cleanup.removed),
                                     "names": list(cleanup.removed[:MAX_LISTED_TEMPORARIES])})


def _problem_rows(summary: FixitySummary) -> list[dict[str, str]]:
    return [{"outcome": p.outcome, "key": p.key, "role": p.role, "item": str(p.item_id or "-"), "detail": p.detail,
             "checked_at": p.checked_at.isoformat() if p.checked_at else "-"}  # ISO 8601 UTC; the CLI shows local time
            for p in summary.problems]


@flow(name="fixity")
def fixity_flow(settings: Settings | None = None, limit: int | None = None, catalogue_id: str | None = None) -> dict[str, Any]:
    """Clean stale temporaries, check up to ``limit`` (default ``fixity_batch_size``) objects, report.

    Returns the run's counts plus ``problems``: every object whose last check found it missing,
    changed or unreadable (found in this run or earlier and not yet checked again).
    """
    logger = get_run_logger()
    settings = settings or load_settings()
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    try:
        check_catalogue(catalogue, catalogue_id, settings)  # another installation's run refuses
    except Exception:
        catalogue.dispose()
        raise
    store = open_store(settings)
    started = utcnow()
    limit = limit or settings.fixity_batch_size
    run: dict[str, Any] = {"store": store.url, "limit": limit, "checked": 0, "ok": 0, "missing": 0, "changed": 0,
                           "unreadable": 0, "hash_adopted": 0, "temporaries_removed": 0, "temporaries_kept": 0}
    try:
        _clean_temporaries(catalogue, store, started - timedelta(seconds=settings.stale_temporary_age_s), run)
        while run["checked"] < limit:
            refs = catalogue.stored_objects_to_check(min(PAGE_SIZE, limit - run["checked"]), older_than=started)
            if not refs:
                break
            results = check_page(store, refs, settings.fixity_workers, first_key=refs[0].key, more=len(refs) - 1)
            to_record, outage = split_at_outage(results)
            catalogue.record_fixity_results(to_record)
            for result in to_record:
                run[result.outcome] += 1
                run["hash_adopted"] += 1 if result.adopted_sha256 else 0
            run["checked"] += len(to_record)
            if outage is not None:
                raise StorageError(f"Stopped checking {store.url}: several objects in a row could not be read, so the "
                                   f"store itself looks unreachable ({outage}). Those objects were not marked; the next "
                                   "run checks them again.")
        catalogue.record_fixity_run(run)
        inventory = catalogue.fixity_summary()
    except StorageError as exc:
        run["error"] = str(exc)
        catalogue.record_fixity_run(run)  # the admin page shows that the last run did not finish, and why
        raise
    finally:
        catalogue.dispose()
    problems = _problem_rows(inventory)
    found = run["missing"] + run["changed"] + run["unreadable"]
    (logger.error if problems else logger.info)(
        "fixity: %d checked (%d ok, %d missing, %d changed, %d unreadable); %d problem object(s) in the inventory",
        run["checked"], run["ok"], run["missing"], run["changed"], run["unreadable"], len(problems))
    create_table_artifact(
        key="fixity-report",
        table=problems or [{"outcome": "ok", "key": "-", "role": "-", "item": "-", "detail": "every checked object is intact",
                            "checked_at": "-"}],
        description=(f"{run['checked']} objects checked, {found} problem(s) found in this run; {len(problems)} object(s) "
                     f"missing, changed or unreadable in the inventory of {inventory.total}; "
                     f"{run['temporaries_removed']} stale temporary file(s) removed"),
    )
    return {**run, "inventory": inventory.counts, "problems": problems}
