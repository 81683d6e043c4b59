"""Issue 5, "How it is shown": a corpus of bad and unusual input (tests/hostile_corpus.py) through the real
``relicflow ingest``, twice. Both runs finish (exit 0, Prefect state Completed, no failed item); every kind
ends as it must (processed with its warnings, quarantined with its code, skipped with its reason); every
original that became an item is kept byte for byte under its SHA-256, and the inbox is not touched; the
second run adds nothing.

One ingest run serves every check (a module fixture); each check collects all mismatches and fails with
a table of them. Kinds that show a product problem not fixed yet are ``known_gap`` in the corpus and are
checked by their own strict xfail test, so a fix shows up as an unexpected pass.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from hostile_corpus import KINDS, STRUCTURAL_WARNINGS, HostileKind, build_corpus
from relicflow.catalogue import Catalogue
from relicflow.cli import app
from relicflow.settings import load_settings
from relicflow.storage import open_store, original_key
from tasks.inbox import printable_name

pytestmark = pytest.mark.slow

CLI_ENV_KEYS = ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "DO_NOT_TRACK", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")
PER_INVOCATION_ENV = {key: None for key in ("PREFECT_HOME", "PREFECT_API_URL", "RELICFLOW_DATA_DIR", "RELICFLOW_LOCALE")}
SUMMARY_LINE = re.compile(r"Ingest done: (\d+) files, (\d+) new, (\d+) awaiting review, (\d+) quarantined, (\d+) failed, "
                          r"(\d+) already known, (\d+) skipped, (\d+) errors")


@dataclass(frozen=True)
class ItemState:
    id: int
    status: str
    quarantine_code: str | None
    quarantine_message_en: str | None
    warnings: frozenset[str]
    inbox_paths: frozenset[str]
    shas: frozenset[str]
    original_keys: frozenset[str | None]
    format: str | None
    access_key: str | None
    accession_number: str | None
    accession_number_source: str | None


@dataclass
class CorpusRun:
    inbox: Path
    data_dir: Path
    entries: dict[str, tuple[str, ...]]
    outputs: list[Result]
    summaries: list[dict[str, Any]]
    run_outcomes: list[str | None]
    flow_run_states: list[str | None]
    items: dict[int, ItemState]  # after the first run
    items_after_second: dict[int, ItemState]
    inbox_before: dict[str, str]  # relative path -> SHA-256 of every regular file
    inbox_after: dict[str, str]
    stored: dict[str, tuple[str | None, str | None]]  # key -> (SHA-256 of what the store holds, registered SHA-256)
    stored_count_after: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall time of each `relicflow ingest` (printed, never asserted)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), "--lang", "en", *args], catch_exceptions=False,
                              env=PER_INVOCATION_ENV)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inbox_hashes(inbox: Path) -> dict[str, str]:
    """SHA-256 of every regular file under the inbox (links are not followed, FIFOs never opened)."""
    found = {}
    for folder, _dirs, files in os.walk(inbox):
        for name in files:
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found[os.fspath(path.relative_to(inbox))] = _sha256(path)
    return found


def _item_states(catalogue: Catalogue) -> dict[int, ItemState]:
    states = {}
    for item in catalogue.items():
        image = item.images[-1] if item.images else None
        states[item.id] = ItemState(
            id=item.id, status=item.status, quarantine_code=item.quarantine_code,
            quarantine_message_en=item.quarantine_message_en, warnings=frozenset(w.code for w in item.warnings),
            inbox_paths=frozenset(f.inbox_path for f in item.files), shas=frozenset(f.sha256 for f in item.files),
            original_keys=frozenset(f.original_key for f in item.files), format=image.format if image else None,
            access_key=image.access_key if image else None, accession_number=item.accession_number,
            accession_number_source=item.accession_number_source)
    return states


def _flow_run_state(flow_run_id: str | None) -> str | None:
    if not flow_run_id:
        return None
    from uuid import UUID

    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
        return state.type.value if state else None


@pytest.fixture(scope="module")
def corpus_run(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusRun]:
    root = tmp_path_factory.mktemp("hostile").resolve()
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("RELICFLOW_"):
                mp.delenv(key)
        for key in CLI_ENV_KEYS:  # set-then-delete: restored (or removed again) when the context ends
            mp.setenv(key, "x")
            mp.delenv(key)
        mp.setenv("RELICFLOW_CONFIG", str(root / "absent.toml"))
        mp.setenv("RELICFLOW_PREFECT_PORT", str(_free_port()))  # no `relicflow serve` server may take these runs
        mp.setenv("RELICFLOW_INBOX_SETTLE_S", "0")  # the corpus was written a moment ago
        mp.setenv("COLUMNS", "250")
        mp.chdir(root)
        inbox, data_dir = root / "inbox", root / "data"
        entries = build_corpus(inbox)
        before = inbox_hashes(inbox)

        assert _cli(data_dir, "init").exit_code == 0  # commands other than init need an installation
        outputs, summaries, outcomes, states, items_by_run, stored_counts, seconds = [], [], [], [], [], [], []
        for _ in range(2):
            started = time.perf_counter()
            result = _cli(data_dir, "ingest", str(inbox))
            seconds.append(time.perf_counter() - started)
            outputs.append(result)
            catalogue = Catalogue(f"sqlite:///{data_dir / 'catalogue.sqlite3'}")
            try:
                run = catalogue.latest_finished_ingest_run()
                summaries.append(dict(run.summary) if run else {})
                outcomes.append(run.outcome if run else None)
                states.append(_flow_run_state(run.flow_run_id if run else None))
                items_by_run.append(_item_states(catalogue))
                inventory = _stored_inventory(catalogue)
                stored_counts.append(len(inventory))
            finally:
                catalogue.dispose()

        store = open_store(load_settings(data_dir=data_dir))
        stored: dict[str, tuple[str | None, str | None]] = {}
        for key, registered in inventory.items():
            try:
                with store.open_read(key) as f:
                    stored[key] = (hashlib.sha256(f.read()).hexdigest(), registered)
            except Exception as exc:  # shown by the check that compares it
                stored[key] = (f"unreadable: {exc!r}", registered)
        yield CorpusRun(inbox=inbox, data_dir=data_dir, entries=entries, outputs=outputs, summaries=summaries,
                        run_outcomes=outcomes, flow_run_states=states, items=items_by_run[0],
                        items_after_second=items_by_run[1], inbox_before=before, inbox_after=inbox_hashes(inbox),
                        stored=stored, stored_count_after=stored_counts, seconds=seconds)


def _stored_inventory(catalogue: Catalogue) -> dict[str, str | None]:
    from sqlalchemy import select

    from relicflow.catalogue.models import StoredObjectRecord

    with catalogue.read_session() as s:
        return {key: sha for key, sha in s.execute(select(StoredObjectRecord.key, StoredObjectRecord.sha256))}


# -- judging one kind -------------------------------------------------------------------------------

def _items_of(run: CorpusRun, kind: HostileKind) -> list[ItemState]:
    paths = {printable_name(os.fspath(run.inbox / entry)) for entry in run.entries[kind.name]}
    return [item for item in run.items.values() if item.inbox_paths & paths]


def judge(run: CorpusRun, kind: HostileKind) -> tuple[str, list[str]]:
    """What became of the kind (one short phrase) and every way it differs from what it must be."""
    expected, entries = kind.expected, run.entries[kind.name]
    skipped = {s["file"]: s["reason"] for s in run.summaries[0].get("skipped_files", [])}
    items = _items_of(run, kind)
    if expected.outcome == "skipped":
        reasons = {skipped.get(printable_name(entry)) for entry in entries}
        got = f"skipped: {', '.join(sorted(str(r) for r in reasons))}" if not items else f"{len(items)} item(s)"
        problems = [f"{entry!r} not reported as skipped ({expected.code})" for entry in entries
                    if skipped.get(printable_name(entry)) != expected.code]
        problems += [f"became item #{item.id} ({item.status})" for item in items]
        return got, problems
    if len(items) != 1:
        got = "no item" if not items else f"{len(items)} items"
        reasons = [skipped[printable_name(e)] for e in entries if printable_name(e) in skipped]
        got += f" (skipped: {', '.join(reasons)})" if reasons else ""
        return got, [f"expected one item for {len(entries)} file(s)"]
    (item,) = items
    wanted_paths = {printable_name(os.fspath(run.inbox / entry)) for entry in entries}
    problems = []
    if not wanted_paths <= item.inbox_paths:
        problems.append(f"item #{item.id} lacks names {sorted(wanted_paths - item.inbox_paths)}")
    if expected.outcome == "quarantined":
        got = f"quarantined: {item.quarantine_code}" if item.status == "quarantined" else item.status
        if item.status != "quarantined" or item.quarantine_code != expected.code:
            problems.append(f"expected quarantined: {expected.code}")
        problems += [f"message does not say {word!r}" for word in expected.says
                     if word not in (item.quarantine_message_en or "")]
    else:
        structural = item.warnings & STRUCTURAL_WARNINGS
        got = (f"processed {item.format}" + (f" +{','.join(sorted(structural))}" if structural else "")
               if item.status == "awaiting_review" else
               f"{item.status}: {item.quarantine_code}" if item.quarantine_code else item.status)
        if item.status != "awaiting_review":
            problems.append("expected awaiting_review")
        elif structural != expected.warnings:
            problems.append(f"structural warnings {sorted(structural)}, expected {sorted(expected.warnings)}")
        if expected.format and item.format != expected.format:
            problems.append(f"format {item.format}, expected {expected.format}")
        if kind.access_check and item.status == "awaiting_review":
            problem = _check_access(run, item, kind)
            if problem:
                problems.append(problem)
    if run.items_after_second.get(item.id) != item:
        problems.append("the second run changed the item's record")
    if expected.accession_number and (item.accession_number, item.accession_number_source) != (
            expected.accession_number, "sheet"):
        problems.append(f"accession number {item.accession_number!r} ({item.accession_number_source}), "
                        f"expected {expected.accession_number!r} from the sheet")
    return got, problems


def _check_access(run: CorpusRun, item: ItemState, kind: HostileKind) -> str | None:
    assert kind.access_check is not None
    if item.access_key is None:
        return "no access copy"
    store = open_store(load_settings(data_dir=run.data_dir))
    with store.open_read(item.access_key) as f:
        access = Image.open(io.BytesIO(f.read()))
        access.load()
    return kind.access_check(access)


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows)


# -- the checks --------------------------------------------------------------------------------------

def test_the_corpus_has_at_least_60_kinds_and_no_two_share_bytes_by_accident(corpus_run: CorpusRun) -> None:
    assert len(KINDS) >= 60
    owners: dict[str, set[str]] = {}
    for kind in KINDS:
        for entry in corpus_run.entries[kind.name]:
            sha = corpus_run.inbox_before.get(entry)
            if sha is not None:
                owners.setdefault(sha, set()).add(kind.name)
    shared = {sha[:12]: sorted(names) for sha, names in owners.items() if len(names) > 1}
    assert not shared, f"kinds sharing bytes would fold into one item: {shared}"


def test_both_runs_finish_with_no_failed_item(corpus_run: CorpusRun) -> None:
    for number, (result, summary) in enumerate(zip(corpus_run.outputs, corpus_run.summaries), start=1):
        assert result.exit_code == 0, f"run {number}:\n{result.output}"
        assert corpus_run.run_outcomes[number - 1] == "completed", f"run {number}"
        assert corpus_run.flow_run_states[number - 1] == "COMPLETED", f"run {number}"
        assert summary["failed"] == 0 and summary["failures"] == [], f"run {number}: {summary['failures']}"
        assert summary["left_received"] == 0 and summary["stopped_because"] is None


def test_every_kind_has_its_expected_outcome(corpus_run: CorpusRun) -> None:
    rows: list[tuple[str, str, str, str]] = []
    tally: Counter[str] = Counter()
    for kind in KINDS:
        got, problems = judge(corpus_run, kind)
        tally[got.split(" ")[0].rstrip(":") if not got.startswith("quarantined") else got] += 1
        if kind.known_gap:
            continue
        if problems:
            rows.append((kind.name, kind.expected.describe(), got, "; ".join(problems)))
    quarantined = {k.removeprefix("quarantined: "): n for k, n in sorted(tally.items()) if k.startswith("quarantined")}
    print(f"\nhostile inbox: {len(KINDS)} kinds, {tally['processed']} processed, "
          f"{sum(quarantined.values())} quarantined {quarantined}, {tally['skipped']} skipped, "
          f"{sum(1 for k in KINDS if k.known_gap)} known gaps (xfail); ingest took "
          f"{' s and '.join(f'{s:.1f}' for s in corpus_run.seconds)} s")
    assert not rows, "kinds with the wrong outcome:\n" + _table([("kind", "expected", "got", "problems"), *rows])


@pytest.mark.parametrize("kind", [pytest.param(k, id=k.name, marks=pytest.mark.xfail(strict=True, reason=k.known_gap))
                                  for k in KINDS if k.known_gap] or [pytest.param(None, id="none")])
def test_known_gap_kinds_still_fail(corpus_run: CorpusRun, kind: HostileKind | None) -> None:
    if kind is None:
        pytest.skip("no known gaps")
    got, problems = judge(corpus_run, kind)
    assert not problems, f"{kind.name}: {got}: {problems}"


def test_every_original_is_kept_byte_for_byte_and_the_inbox_is_untouched(corpus_run: CorpusRun) -> None:
    assert corpus_run.inbox_after == corpus_run.inbox_before
    problems = []
    by_path = {printable_name(os.fspath(corpus_run.inbox / rel)): sha for rel, sha in corpus_run.inbox_before.items()}
    for item in corpus_run.items.values():
        (sha,) = item.shas
        key = original_key(sha)
        if item.original_keys != {key}:
            problems.append(f"#{item.id}: original keys {item.original_keys}, expected {{{key!r}}}")
        held, registered = corpus_run.stored.get(key, (None, None))
        if held != sha:
            problems.append(f"#{item.id}: the store holds {held} under {key}")
        if registered != sha:
            problems.append(f"#{item.id}: the fixity inventory registers {registered} for {key}")
        for path in item.inbox_paths:
            if by_path.get(path) != sha:
                problems.append(f"#{item.id}: inbox file {path} hashes to {by_path.get(path)}, not {sha}")
    for key, (held, registered) in corpus_run.stored.items():
        if held != registered:
            problems.append(f"stored object {key}: holds {held}, registered {registered}")
    assert not problems, "\n".join(problems)


def test_nothing_is_left_received_or_failed_and_the_second_run_adds_nothing(corpus_run: CorpusRun) -> None:
    for items in (corpus_run.items, corpus_run.items_after_second):
        stuck = {i.id: i.status for i in items.values() if i.status in ("received", "failed")}
        assert not stuck
    gaps = {item.id for kind in KINDS if kind.known_gap for item in _items_of(corpus_run, kind)}
    changed = sorted(i for i in corpus_run.items if corpus_run.items_after_second.get(i) != corpus_run.items[i])
    assert set(corpus_run.items_after_second) == set(corpus_run.items)
    assert set(changed) <= gaps, [corpus_run.items_after_second[i] for i in changed]
    second = corpus_run.summaries[1]
    assert second["new"] == 0 and second["awaiting_review"] == 0 and second["quarantined"] == 0
    assert second["already_known"] == corpus_run.summaries[0]["files"]
    assert corpus_run.stored_count_after[1] == corpus_run.stored_count_after[0]


def test_the_summaries_match_the_catalogue(corpus_run: CorpusRun) -> None:
    first, second = corpus_run.summaries
    statuses = Counter(item.status for item in corpus_run.items.values())
    assert first["new"] == len(corpus_run.items) == sorted(corpus_run.items)[-1]  # every item came from this run
    assert first["awaiting_review"] == statuses["awaiting_review"]
    assert first["quarantined"] == statuses["quarantined"]
    assert first["failed"] == statuses["failed"] == 0
    assert first["skipped_total"] == len(first["skipped_files"]) == sum(first["skipped"].values())
    assert sorted(first["items"]) == sorted(corpus_run.items)
    expected_skips = sum(len(corpus_run.entries[k.name]) for k in KINDS if k.expected.outcome == "skipped")
    assert first["skipped_total"] == expected_skips
    # the line the technician reads says the same
    for result, summary in zip(corpus_run.outputs, (first, second)):
        match = SUMMARY_LINE.search(" ".join(result.output.split()))
        assert match, result.output
        shown = tuple(int(n) for n in match.groups())
        assert shown == (summary["files"], summary["new"], summary["awaiting_review"], summary["quarantined"],
                         summary["failed"], summary["already_known"], summary["skipped_total"], summary["errors"])
    # every skipped entry is listed with its reason in the output
    for entry in first["skipped_files"]:
        assert entry["file"] in corpus_run.outputs[0].output
