"""Crash test: `relicflow ingest` and `relicflow mint` killed (SIGKILL of the process group) at 20 seeded
points, each re-run to completion, and nothing lost, duplicated, minted twice, orphaned or stuck.

Everything is real: the CLI in its own process group against the session's Prefect server, a SQLite
catalogue and a LocalStore in one data dir, the isolated decoder workers, and the sandbox issuer over
HTTP on loopback with its SQLite ledger as the ground truth for tokens. The issuer takes a moment
between claiming an Idempotency-Key and minting, and between minting and answering, as a real chain
does, so kills can land while a request is in flight and after the issuer minted but before the
receipt is stored.

Each kill point waits for a catalogue, store or ledger event of its phase (ingest: run started, scans
planned, an original stored but not yet recorded, first scan finished, last scan finished; mint: process
started, metadata written, batch committed, key claimed at the issuer, tokens minted, receipt stored),
then sleeps a seeded random part of that phase's length and kills. Where it really landed is read from
the catalogue, the store and the ledger after the kill and printed. After some ingest kills the studio
moves one of the new scans out of the inbox before the re-run, as staff tidying up would. Every re-run
is followed by the audit of tests/crash_audit.py; the end runs the fixity flow (which must remove the
killed writers' temporary files) and audits once more, comparing every original byte for byte.

The seed is printed; RELICFLOW_CRASH_SEED=<n> replays a run: the same schedule, scans, delays and
decisions (where a kill lands also depends on the machine's timing, which is why the landing is read
and printed rather than assumed). RELICFLOW_CRASH_POINTS=<k> runs only the first k points, for debugging.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crash_audit import Findings, audit, store_files
from crash_world import Probe, SlowAnswers, Studio, kill_when
from relicflow.background_server import serve_in_background
from relicflow.catalogue import Catalogue
from relicflow.passwords import hash_password
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import Settings

SEED_ENV = "RELICFLOW_CRASH_SEED"
DEFAULT_SEED = 5
KILL_POINTS = 20
HEARTBEAT_S = 0.15  # a killed run counts as interrupted after 6 silent beats: 0.9 s
ISSUER_MINT_DELAY_S = 0.25  # key claimed -> batch minted: the in-flight window
ISSUER_ANSWER_DELAY_S = 0.25  # batch minted -> answer sent: minted, but the receipt not yet stored
# After an ingest kill the studio moves one of the new scans out of the inbox: always after a kill
# between storing an original and recording it (what makes that window matter), else at this chance.
TIDY_UP_CHANCE = 0.4

INGEST_PHASES = ("run_started", "planned", "storing", "processing", "finishing")
MINT_PHASES = ("starting", "preparing", "committed", "in_flight", "minted_unanswered", "receipted")
# How long after its event a kill may land (seconds): about the length of the phase it starts.
PHASE_WINDOW_S = {
    "run_started": (0.0, 0.05), "planned": (0.0, 0.8), "storing": (0.0, 0.01), "processing": (0.0, 0.25),
    "finishing": (0.0, 0.3),
    "starting": (0.3, 2.5), "preparing": (0.0, 0.02), "committed": (0.0, 0.05),
    "in_flight": (0.0, ISSUER_MINT_DELAY_S), "minted_unanswered": (0.0, ISSUER_ANSWER_DELAY_S), "receipted": (0.0, 0.3),
}


def crash_seed() -> int:
    return int(os.environ.get(SEED_ENV, DEFAULT_SEED))


@dataclass(frozen=True)
class KillPoint:
    number: int
    kind: str  # ingest | mint
    phase: str
    delay_s: float


def kill_schedule(rng: random.Random) -> list[KillPoint]:
    """20 points, ingest and mint mixed; every mint follows an ingest so it has fresh approvals, and the
    phases of each kind are dealt round-robin before shuffling, so each is hit about as often."""
    n_mint = rng.randint(KILL_POINTS // 2 - 2, KILL_POINTS // 2 - 1)
    n_ingest = KILL_POINTS - n_mint
    after = set(rng.sample(range(n_ingest), n_mint))
    kinds: list[str] = []
    for i in range(n_ingest):
        kinds += ["ingest", "mint"] if i in after else ["ingest"]
    phases = {kind: [names[i % len(names)] for i in range(kinds.count(kind))]
              for kind, names in (("ingest", INGEST_PHASES), ("mint", MINT_PHASES))}
    for names in phases.values():
        rng.shuffle(names)
    points = []
    for number, kind in enumerate(kinds, start=1):
        phase = phases[kind].pop()
        low, high = PHASE_WINDOW_S[phase]
        points.append(KillPoint(number, kind, phase, round(rng.uniform(low, high), 3)))
    return points


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    defaults = Settings(data_dir=tmp_path / "unused")
    ledger = tmp_path / "issuer" / "ledger.sqlite3"
    app = create_sandbox_app(ledger_path=ledger, api_key=defaults.issuer_api_key.get_secret_value(),
                             secret=defaults.issuer_secret.get_secret_value().encode(), mint_delay_s=ISSUER_MINT_DELAY_S)
    with serve_in_background(SlowAnswers(app, ISSUER_ANSWER_DELAY_S)) as url:
        yield url, ledger


# -- the test ---------------------------------------------------------------------------------------


@dataclass
class World:
    settings: Settings
    child_env: dict[str, str]
    probe: Probe
    studio: Studio
    ledger: Path
    logs: Path
    reviewers: tuple[int, int]
    verified: set[str] = field(default_factory=set)


@pytest.fixture
def world(tmp_path: Path, issuer: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> World:
    import prefect.settings

    for key in list(os.environ):
        if key.startswith("RELICFLOW_") and key != SEED_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("RELICFLOW_CONFIG", str(tmp_path / "absent.toml"))
    url, ledger = issuer
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, inbox_settle_s=0.0, ingest_heartbeat_s=HEARTBEAT_S, issuer_url=url, locale="en",
                        decode_processes=2)
    settings.inbox.mkdir(parents=True)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    reviewers = (catalogue.add_user("wang", hash_password("w-secret-1"), "reviewer"),
                 catalogue.add_user("li", hash_password("l-secret-2"), "senior_reviewer"))  # graded: the second approval
    catalogue.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELICFLOW_", "PREFECT_"))}
    env.update({
        "PREFECT_API_URL": str(prefect.settings.PREFECT_API_URL.value()),  # the session's server: no server per child
        "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        "RELICFLOW_CONFIG": str(tmp_path / "absent.toml"), "RELICFLOW_INBOX_SETTLE_S": "0",
        "RELICFLOW_INGEST_HEARTBEAT_S": str(HEARTBEAT_S), "RELICFLOW_ISSUER_URL": url, "RELICFLOW_DECODE_PROCESSES": "2",
    })
    logs = tmp_path / "logs"
    logs.mkdir()
    return World(settings, env, Probe(data_dir / "catalogue.sqlite3", ledger), Studio(settings.inbox, data_dir / "objects", crash_seed()),
                 ledger, logs, reviewers)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_kills_of_ingest_and_mint_lose_duplicate_double_mint_orphan_and_strand_nothing(world: World) -> None:
    from flows.fixity import fixity_flow

    seed = crash_seed()
    points = kill_schedule(random.Random(seed))[: int(os.environ.get("RELICFLOW_CRASH_POINTS", KILL_POINTS))]  # fewer: for debugging
    rng = random.Random(f"decisions-{seed}")  # tidy-ups and reviewers' decisions
    kinds = Counter(p.kind for p in points)
    print(f"\ncrash test seed {seed} ({SEED_ENV}={seed} replays it): {kinds['ingest']} ingest and {kinds['mint']} mint kill points")
    seen: dict[str, set[str]] = {k: set() for k in ("lost", "duplicated", "double_mints", "orphans", "stuck", "misjudged")}
    temporaries: set[str] = set()
    started = time.monotonic()
    for point in points:
        t0 = time.monotonic()
        landed, rerun, survivors = (ingest_kill_point if point.kind == "ingest" else mint_kill_point)(world, point, rng)
        t1 = time.monotonic()
        found = check(world)
        found.stuck += [f"process {pid} of the run killed at #{point.number} still running" for pid in survivors]
        timing = f"{t1 - t0:.1f}+{time.monotonic() - t1:.1f}s"
        new = {kind: set(getattr(found, kind)) - seen[kind] for kind in seen}
        for kind, what in new.items():
            seen[kind] |= what
        left = set(found.temporaries) - temporaries
        temporaries |= set(found.temporaries)
        print(f"#{point.number:02d} {point.kind:6} {point.phase:17} +{point.delay_s:.3f}s  landed: {landed}"
              + (f"; {len(left)} temporary file(s) left" if left else "") + f"  | re-run: {rerun} ({timing})")
        for kind, what in new.items():
            for line in sorted(what):
                print(f"      {kind}: {line}")

    fixity = fixity_flow(settings=world.settings)
    found = check(world, full=True)
    for kind in seen:
        seen[kind] |= set(getattr(found, kind))
    remaining = set(found.temporaries)
    print(f"temporary files left by killed writers: {len(temporaries)}; the fixity flow removed "
          f"{fixity['temporaries_removed']}, kept {fixity['temporaries_kept']}; {len(remaining)} remain"
          + (f" ({', '.join(sorted(remaining))})" if remaining else ""))
    print(f"fixity: {fixity['checked']} objects checked, {fixity['missing']} missing, {fixity['changed']} changed; "
          f"{len(world.studio.dropped)} files dropped; {time.monotonic() - started:.0f} s")
    print(f"Prefect: {running_flow_runs()} flow run(s) of killed processes still shown as Running")
    orphans = len(seen["orphans"]) + len(remaining)
    counts = {k: len(v) for k, v in seen.items()}
    print(f"crash test (seed {seed}, {KILL_POINTS} kill points: {kinds['ingest']} ingest, {kinds['mint']} mint): "
          f"lost {counts['lost']}, duplicated {counts['duplicated']}, double mints {counts['double_mints']}, "
          f"orphans {orphans}, stuck {counts['stuck']}")
    assert fixity["missing"] == fixity["changed"] == fixity["unreadable"] == 0, fixity["problems"]
    catalogue = Catalogue.from_settings(world.settings)
    try:
        assert catalogue.verify_audit_chain() is None, "a kill broke the audit chain"
    finally:
        catalogue.dispose()
    assert (counts["lost"], counts["duplicated"], counts["double_mints"], orphans, counts["stuck"], counts["misjudged"]) == (0,) * 6, \
        {k: sorted(v) for k, v in seen.items() if v} | ({"temporaries": sorted(remaining)} if remaining else {})


def running_flow_runs() -> int:
    """Flow runs the Prefect server still believes are running (a SIGKILL gives Prefect no last word)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        running = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])))
        return len(client.read_flow_runs(flow_run_filter=running))


def check(world: World, *, full: bool = False) -> Findings:
    catalogue = Catalogue.from_settings(world.settings)
    try:
        return audit(catalogue, world.settings.data_dir / "objects", world.ledger, world.studio.dropped,
                     None if full else world.verified)
    finally:
        catalogue.dispose()


def start_cli(world: World, point: KillPoint, command: str) -> subprocess.Popen[bytes]:
    log = open(world.logs / f"{point.number:02d}-{command}.log", "wb")  # noqa: SIM115 - closed with the process
    argv = [sys.executable, "-m", "relicflow.cli", "--data-dir", str(world.settings.data_dir), "--lang", "en", command]
    process = subprocess.Popen(argv, env=world.child_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=world.logs, start_new_session=True)
    log.close()
    return process


def ingest_kill_point(world: World, point: KillPoint, rng: random.Random) -> tuple[str, str, list[int]]:
    """Drop new scans, kill `relicflow ingest` in the point's phase, re-run ingest to completion.
    Returns (where the kill landed, what the re-run did, processes of the killed run still alive)."""
    from flows.ingest import ingest_flow

    new = world.studio.drop()
    probe, before = world.probe, world.probe.last_id("ingest_runs")
    unrecorded_before = unrecorded_originals(world)
    run = lambda: probe.run(before)  # noqa: E731
    events = {
        "run_started": lambda: run() is not None,
        "planned": lambda: (r := run()) is not None and r["total"] > 0,
        "storing": lambda: bool(unrecorded_originals(world) - unrecorded_before),
        "processing": lambda: (r := run()) is not None and r["done"] >= 1,
        "finishing": lambda: (r := run()) is not None and r["total"] > 0 and r["done"] >= r["total"],
    }
    started = time.monotonic()
    process = start_cli(world, point, "ingest")
    killed, survivors = kill_when(process, events[point.phase], point.delay_s)
    killed_at = time.monotonic()
    landed = describe_ingest_landing(world, run(), killed, survivors, len(new))
    if point.phase == "storing" or rng.random() < TIDY_UP_CHANCE:
        landed += world.studio.tidy_up(new, world.logs.parent / "moved-away" / f"{point.number:02d}", world.probe.item_status)
    # the next run recognises the killed one as interrupted once it has been silent for 6 heartbeats
    time.sleep(max(0.0, killed_at + 6 * HEARTBEAT_S + 0.2 - time.monotonic()))
    t = time.monotonic()
    summary = ingest_flow(settings=world.settings)
    rerun = (f"[cli {killed_at - started:.1f}s, rerun {time.monotonic() - t:.1f}s] run {summary['ingest_run_id']}: {summary['new']} to do, {summary['awaiting_review']} awaiting review, "
             f"{summary['quarantined']} quarantined, {summary['failed']} failed, {summary['already_known']} known, "
             f"{summary['retried']} resumed")
    return landed, rerun, survivors


def unrecorded_originals(world: World) -> set[str]:
    """Originals published in the store but not in the catalogue's inventory: while a run works, their
    writer is between the storage write and the catalogue writes that record it."""
    objects, _, _ = store_files(world.settings.data_dir / "objects" / "originals")
    if not objects:
        return set()
    known = {key for (key,) in world.probe.rows("catalogue", "SELECT key FROM stored_objects WHERE role = 'original'")}
    return {f"originals/{key}" for key in objects} - known


def describe_ingest_landing(world: World, run: dict[str, Any] | None, killed: bool, survivors: list[int], dropped: int) -> str:
    where = "" if killed else "finished before the kill; "
    if survivors:
        where += f"SURVIVING PROCESSES {survivors}; "
    if run is None:
        return where + f"before the run started ({dropped} new files waiting)"
    statuses = Counter(s for (s,) in world.probe.rows("catalogue", "SELECT status FROM items WHERE ingest_run_id = ?", run["id"]))
    originals = world.probe.one("catalogue", "SELECT COUNT(*) FROM stored_objects s JOIN items i ON i.id = s.item_id "
                                             "WHERE s.role = 'original' AND i.ingest_run_id = ?", run["id"])
    if run["finished"]:
        stage = "after the run finished (summary recorded, process exiting)"
    elif not statuses:
        stage = "run started, before any item was registered"
    elif run["done"] == 0:
        stage = f"{sum(statuses.values())} items received, none finished"
    else:
        stage = f"{run['done']} of {run['total']} scans finished"
    counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    objects, _, _ = store_files(world.settings.data_dir / "objects" / "originals")
    linked = {key for (key,) in world.probe.rows("catalogue", "SELECT original_key FROM source_files WHERE original_key IS NOT NULL")}
    unlinked = sum(f"originals/{key}" not in linked for key in objects)
    return where + f"run {run['id']} {stage}" + (f" [{counts}; {originals} originals inventoried" if statuses else "") \
        + (f", {unlinked} stored but not yet linked in the catalogue" if unlinked else "") + ("]" if statuses else "")


def approve_waiting(world: World, rng: random.Random) -> str:
    """Reviewers decide every item awaiting review through the catalogue API: two approvals for graded
    relics, now and then a rejection (which must never reach the issuer)."""
    catalogue = Catalogue.from_settings(world.settings)
    try:
        waiting = catalogue.items_awaiting_review()
        outcomes: Counter[str] = Counter()
        for n, item in enumerate(waiting):
            if n > 0 and rng.random() < 0.15:
                catalogue.record_decision(item.id, reviewer_id=world.reviewers[0], decision="reject", reason="曝光过度 / overexposed")
                outcomes["rejected"] += 1
                continue
            catalogue.record_decision(item.id, reviewer_id=world.reviewers[0], decision="approve")
            if item.required_approvals == 2:
                catalogue.record_decision(item.id, reviewer_id=world.reviewers[1], decision="approve")
                outcomes["approved by two"] += 1
            else:
                outcomes["approved"] += 1
        return ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())) or "nothing to decide"
    finally:
        catalogue.dispose()


def mint_kill_point(world: World, point: KillPoint, rng: random.Random) -> tuple[str, str, list[int]]:
    """Decide what awaits review, kill `relicflow mint` in the point's phase, re-run mint to completion."""
    from flows.mint import mint_flow

    decided = approve_waiting(world, rng)
    probe = world.probe
    batches_before = probe.last_id("mint_batches")
    metadata_before = probe.one("catalogue", "SELECT COUNT(*) FROM stored_objects WHERE role = 'metadata'")
    batch = lambda: probe.batch(batches_before)  # noqa: E731
    events = {
        "starting": lambda: True,
        "preparing": lambda: probe.one("catalogue", "SELECT COUNT(*) FROM stored_objects WHERE role = 'metadata'") > metadata_before
                             or batch() is not None,
        "committed": lambda: batch() is not None,
        "in_flight": lambda: (b := batch()) is not None and probe.issuer_key_state(b["key"]) is not None,
        "minted_unanswered": lambda: (b := batch()) is not None and probe.issuer_tokens(b["ref"]) > 0,
        "receipted": lambda: (b := batch()) is not None and b["status"] == "minted",
    }
    process = start_cli(world, point, "mint")
    killed, survivors = kill_when(process, events[point.phase], point.delay_s)
    landed = describe_mint_landing(world, batch(), metadata_before, killed, survivors)
    result = mint_flow(settings=world.settings)
    statuses = Counter(b["status"] for b in result["batches"])
    rerun = (f"{decided}; minted {result['minted']} in {len(result['batches'])} batch(es) "
             f"({', '.join(f'{n} {s}' for s, n in sorted(statuses.items())) or 'none'})")
    assert not result["failed"], result
    return landed, rerun, survivors


def describe_mint_landing(world: World, batch: dict[str, Any] | None, metadata_before: int, killed: bool, survivors: list[int]) -> str:
    where = "" if killed else "finished before the kill; "
    if survivors:
        where += f"SURVIVING PROCESSES {survivors}; "
    if batch is None:
        written = world.probe.one("catalogue", "SELECT COUNT(*) FROM stored_objects WHERE role = 'metadata'") - metadata_before
        return where + ("before any effect (starting up)" if not written
                        else f"{written} metadata document(s) stored, batch not committed")
    key_state = world.probe.issuer_key_state(batch["key"])
    tokens = world.probe.issuer_tokens(batch["ref"])
    if batch["status"] == "minted":
        return where + f"batch {batch['ref']} receipt stored (process finishing)"
    if tokens:
        return where + f"batch {batch['ref']}: issuer minted {tokens} token(s), receipt not stored"
    if key_state:
        return where + f"batch {batch['ref']}: request in flight at the issuer (key {key_state})"
    return where + f"batch {batch['ref']} committed ({batch['status']}), issuer has not seen it"


def test_kill_schedule_is_seeded_and_covers_every_phase() -> None:
    first, again, other = (kill_schedule(random.Random(s)) for s in (7, 7, 8))
    assert first == again and first != other
    assert len(first) == KILL_POINTS and first[0].kind == "ingest"
    assert all(b.kind == "ingest" for a, b in zip(first, first[1:]) if a.kind == "mint"), "a mint right after a mint has nothing to do"
    assert {p.phase for p in first if p.kind == "ingest"} == set(INGEST_PHASES)
    assert {p.phase for p in first if p.kind == "mint"} == set(MINT_PHASES)
