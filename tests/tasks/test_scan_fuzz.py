"""Property: whatever bytes arrive, the whole per-scan path ends in a proper state and keeps the original.

Mutants of valid JPEG/PNG/TIFF/WebP seeds (tests/scan_mutations.py) and TIFF files generated from
scratch (tests/tiff_generator.py) go through what an ingest run does to each file: registration as
intake does it, then ``ingest_scan`` with the pixel work in isolated worker processes, against a real
SQLite catalogue and local object store. For every example:

- ``ingest_scan`` returns (never raises), with ``awaiting_review`` or ``quarantined`` under a known code;
  ``failed`` would be our own bug, and the test prints the item's recorded error;
- the catalogue says the same status (and the same code, with both messages);
- the stored original is byte-identical to the file;
- a scan awaiting review has an access copy and a thumbnail in the store that decode;
- what the catalogue keeps as JSON (derivation, technical metadata, warning details) is strict JSON, as a
  PostgreSQL catalogue requires (no NaN or Infinity).

Bounded and reproducible in the suite (derandomised, a fixed number of examples). Outside it,
``RELICFLOW_FUZZ_EXAMPLES=5000`` runs that many examples per test (per format, per hostility) with fresh
randomness (add ``--hypothesis-seed=N`` to repeat a run), and ``RELICFLOW_FUZZ_SAVE=dir`` keeps every input
that broke the property there, with what happened, and goes on instead of stopping at the first (inputs
that ended as decoder_timeout/out_of_memory/crashed are kept too, for a look).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from PIL import Image
from scan_mutations import Mutant, layout_of, mutated_scans
from scan_seeds import seed_files
from tiff_generator import GeneratedTiff, generated_tiffs

from relicflow.catalogue import Catalogue
from relicflow.isolated import IsolatedWorkers
from relicflow.settings import Settings, load_settings
from relicflow.storage import ObjectStore, open_store, original_key
from tasks.ingest_scan import IngestContext, ingest_scan
from tasks.intake import ScanWork

KNOWN_CODES = frozenset({
    "empty_file", "not_an_image", "unsupported_format", "truncated_image", "decompression_bomb", "corrupt_image",
    "decoder_timeout", "decoder_out_of_memory", "decoder_crashed",
})
MANY = int(os.environ.get("RELICFLOW_FUZZ_EXAMPLES", "0"))
SAVE_TO = os.environ.get("RELICFLOW_FUZZ_SAVE")
DECODE_TIMEOUT_S = 5.0
MEMORY_LIMIT_MB = 1500
# Sizes up to this are decoded; hostile headers claim more (the bomb guard) and less (big allocations
# from tiny files). Far below the production default so that one example stays well under a second.
MAX_PIXELS = 16_000_000


def fuzz_settings(examples: int) -> settings:
    """``examples`` in the suite, derandomised; RELICFLOW_FUZZ_EXAMPLES outside it, random."""
    return settings(max_examples=MANY or examples, deadline=None, derandomize=not MANY, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
                    print_blob=True)


@pytest.fixture(scope="module")
def workers() -> Iterator[IsolatedWorkers]:
    """One pool for the module, as an ingest run has: starting it costs about a second."""
    with IsolatedWorkers(2, memory_limit_mb=MEMORY_LIMIT_MB, preload=("tasks.scan_analysis:warm_up",)) as pool:
        yield pool


@dataclass
class World:
    """A catalogue and store for one test function (making them per example would cost most of the time)."""

    settings: Settings
    workers: IsolatedWorkers
    catalogue: Catalogue
    store: ObjectStore
    inbox: Path
    seen: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, base: Settings, workers: IsolatedWorkers, root: Path) -> World:
        root.mkdir(parents=True)
        # a catalogue (SQLite) and store of its own under ``root``: not the ones the base settings derived
        settings = load_settings(**{**base.model_dump(), "data_dir": root / "data", "database_url": "", "storage_url": "",
                                    "decode_timeout_s": DECODE_TIMEOUT_S, "decode_memory_limit_mb": MEMORY_LIMIT_MB,
                                    "max_image_pixels": MAX_PIXELS})
        catalogue = Catalogue.from_settings(settings)
        catalogue.migrate()
        return cls(settings, workers, catalogue, open_store(settings), root / "inbox")


class Worlds:
    """The current world, and a fresh one whenever an input comes again (hypothesis replays a failing
    example while it shrinks it): the same bytes again would only find the item they made last time."""

    def __init__(self, settings: Settings, workers: IsolatedWorkers, tmp_path: Path) -> None:
        self._settings, self._workers, self._tmp = settings, workers, tmp_path
        self._count = 0
        self.outcomes: Counter[str] = Counter()
        self.broken: list[str] = []
        self.current = self._new()

    def _new(self) -> World:
        self._count += 1
        return World.create(self._settings, self._workers, self._tmp / f"world-{self._count}")

    def for_input(self, sha256: str) -> World:
        if sha256 in self.current.seen:
            self.current.catalogue.dispose()
            self.current = self._new()
        self.current.seen.add(sha256)
        return self.current


def ingest_one(worlds: Worlds, name: str, data: bytes, description: str) -> None:
    """Register the file as intake does, take it through ingest_scan, and check the property."""
    sha = hashlib.sha256(data).hexdigest()
    world = worlds.for_input(sha)
    world.inbox.mkdir(parents=True, exist_ok=True)
    path = world.inbox / f"{len(world.seen)}-{name}"
    path.write_bytes(data)
    stat = path.stat()
    item_id, created = world.catalogue.register_received(sha256=sha, file_name=path.name, inbox_path=str(path),
                                                         size_bytes=len(data), ingest_run_id=None)
    assert created
    work = ScanWork(item_id=item_id, sha256=sha, size_bytes=len(data), file_name=path.name, inbox_path=str(path),
                    path=path, stat_key=(stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    ctx = IngestContext(settings=world.settings, catalogue=world.catalogue, store=world.store, workers=world.workers)
    ended_as, problems = _check(world, ctx, work, data)
    worlds.outcomes[ended_as] += 1
    path.unlink()
    if SAVE_TO and (problems or ended_as.startswith("decoder_")):  # keep the input and what happened
        folder = Path(SAVE_TO) / ("broken" if problems else ended_as)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{sha[:16]}-{name}").write_bytes(data)
        (folder / f"{sha[:16]}-{name}.json").write_text(json.dumps(
            {"description": description, "ended_as": ended_as, "problems": problems}, indent=1, ensure_ascii=False))
    if problems:
        report = f"{description}\n  " + "\n  ".join(problems)
        note(report)
        if SAVE_TO:  # go on: the whole run's findings are listed at the end
            worlds.broken.append(report)
            return
        raise AssertionError(report)


def _check(world: World, ctx: IngestContext, work: ScanWork, data: bytes) -> tuple[str, list[str]]:
    """How this file ended (status or quarantine code), and what is wrong with that; no problems when all is well."""
    try:
        outcome = ingest_scan(ctx, work)
    except Exception as exc:  # the property's first clause: this must never happen
        return "raised", [f"ingest_scan raised {type(exc).__name__}: {exc}"]
    item = world.catalogue.item(work.item_id)
    assert item is not None
    ended_as = str(outcome.quarantine_code if outcome.status == "quarantined" else outcome.status)
    problems = []
    if outcome.status not in ("awaiting_review", "quarantined"):
        problems.append(f"outcome {outcome.status}: {outcome.error or outcome.message}\n{item.last_error or ''}")
    if item.status != outcome.status:
        problems.append(f"catalogue says {item.status}, ingest_scan said {outcome.status}")
    if outcome.status == "quarantined":
        if outcome.quarantine_code not in KNOWN_CODES:
            problems.append(f"unknown quarantine code {outcome.quarantine_code!r}")
        if item.quarantine_code != outcome.quarantine_code or not item.quarantine_message_en or not item.quarantine_message_zh:
            problems.append(f"catalogue quarantine record incomplete: {item.quarantine_code!r}")
    key = original_key(work.sha256)
    if not world.store.exists(key) or world.store.get_bytes(key) != data:
        problems.append("the stored original is missing or differs from the file")
    if outcome.status == "awaiting_review":
        problems += _derivative_problems(world, item)
    problems += _json_problems(item)
    return ended_as, problems


def _json_problems(item: object) -> list[str]:
    """What the catalogue keeps as JSON must be JSON PostgreSQL accepts: no NaN, no Infinity."""
    records = {"derivation": [image.derivation for image in getattr(item, "images", [])],
               "metadata": [record.data for record in getattr(item, "metadata_records", [])],
               "warnings": [warning.details for warning in getattr(item, "warnings", [])]}
    problems = []
    for name, value in records.items():
        try:
            json.dumps(value, allow_nan=False)
        except ValueError as exc:
            problems.append(f"the item's {name} is not strict JSON ({exc}): {json.dumps(value)[:300]}")
    return problems


def _derivative_problems(world: World, item: object) -> list[str]:
    images = getattr(item, "images", [])
    if not images:
        return ["awaiting review without an image record"]
    image = images[-1]
    problems = []
    for kind, key, long_side in (("access", image.access_key, world.settings.access_long_side),
                                 ("thumbnail", image.thumbnail_key, world.settings.thumbnail_long_side)):
        if not key or not world.store.exists(key):
            problems.append(f"no {kind} copy in the store")
            continue
        try:
            with Image.open(io.BytesIO(world.store.get_bytes(key))) as copy:
                copy.load()
                if copy.format != "JPEG" or max(copy.size) > long_side or min(copy.size) < 1:
                    problems.append(f"{kind} copy is {copy.format} {copy.size}")
        except Exception as exc:
            problems.append(f"{kind} copy does not decode: {exc}")
    return problems


def _finish(worlds: Worlds, label: str) -> None:
    worlds.current.catalogue.dispose()
    print(f"\n{label}: {sum(worlds.outcomes.values())} files: {dict(worlds.outcomes.most_common())}")
    if worlds.broken:
        pytest.fail(f"{len(worlds.broken)} inputs broke the property (saved in {SAVE_TO}):\n" + "\n".join(worlds.broken[:20]))


# Examples per test in the suite: each test stays under ten seconds, all of them take about half a minute.
MUTANTS = {".jpg": 70, ".png": 70, ".tif": 90, ".webp": 40}
GENERATED = {"clean": 60, "few": 60, "wild": 60}


@pytest.mark.parametrize("suffix", sorted(MUTANTS))
def test_mutated_seed_files_end_in_review_or_quarantine(settings: Settings, workers: IsolatedWorkers,
                                                        tmp_path: Path, suffix: str) -> None:
    worlds = Worlds(settings, workers, tmp_path)
    seeds = tuple(name for name in seed_files() if name.endswith(suffix))

    @fuzz_settings(examples=MUTANTS[suffix])
    @given(mutated_scans(seeds))
    def property_holds(mutant: Mutant) -> None:
        ingest_one(worlds, mutant.name, mutant.data, repr(mutant))

    property_holds()
    _finish(worlds, f"mutated {suffix}")
    assert "awaiting_review" in worlds.outcomes and set(worlds.outcomes) & KNOWN_CODES  # both ends are reached


@pytest.mark.parametrize("hostility", sorted(GENERATED))
def test_generated_tiffs_end_in_review_or_quarantine(settings: Settings, workers: IsolatedWorkers,
                                                     tmp_path: Path, hostility: str) -> None:
    worlds = Worlds(settings, workers, tmp_path)

    @fuzz_settings(examples=GENERATED[hostility])
    @given(generated_tiffs(hostility))
    def property_holds(tiff: GeneratedTiff) -> None:
        ingest_one(worlds, tiff.name, tiff.data, repr(tiff))

    property_holds()
    _finish(worlds, f"generated TIFF, {hostility}")
    assert "awaiting_review" in worlds.outcomes
    if hostility == "clean":  # what a real writer would produce is read, nearly always
        assert worlds.outcomes["awaiting_review"] >= 0.8 * sum(worlds.outcomes.values()), worlds.outcomes
    else:
        assert set(worlds.outcomes) & KNOWN_CODES


def test_the_mutations_know_where_each_seeds_structure_is() -> None:
    """Without landmarks the mutations would be byte noise that mostly hits compressed picture data."""
    for name in seed_files():
        fields = {f.name for f in layout_of(name).fields}
        expected = {".jpg": {"width", "height", "precision"}, ".png": {"width", "height", "bit depth"},
                    ".webp": {"RIFF size"}, ".tif": {"first IFD offset", "tag 256 value", "tag 273 value"}}[Path(name).suffix]
        if name.endswith("tiled.tif"):
            expected = expected - {"tag 273 value"} | {"tag 324 value"}
        if "icc" in name:  # the embedded profile's fields, for the colour-management path
            expected |= {"ICC colour space", "ICC tag count"}
        assert expected <= fields, (name, sorted(fields)[:20])
        assert layout_of(name).segments, name
