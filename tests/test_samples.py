"""The bundled samples and the demo inbox: small, documented, and every file does what it is there for."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from relicflow.errors import InputRejected
from relicflow.samples import generate
from relicflow.samples.generate import (
    BUNDLED_PHOTOGRAPHS,
    CHINESE_NAMED,
    EXIF_ROTATED,
    EXPECTED_QUARANTINE,
    NEAR_DUPLICATE,
    NEAR_DUPLICATE_OF,
    SECOND_VIEW,
    SECOND_VIEW_OF,
    ORPHAN_ACCESSION,
    RUBBING_16BIT,
    SHEET_FILE_NAME,
    TIFF_48BIT,
    write_demo_inbox,
)
from tasks.cleanup import normalise_for_viewing
from tasks.enrichment import read_accession_sheet
from tasks.hashing import hamming_distance, perceptual_hashes
from tasks.quality import quality_warnings
from tasks.validation import DecodedImage, decode_and_validate

SAMPLES_DIR = Path(generate.__file__).parent
MAX_PIXELS = 200_000_000


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    directory = tmp_path_factory.mktemp("inbox")
    return directory, write_demo_inbox(directory)


@pytest.fixture(scope="module")
def decoded(inbox: tuple[Path, list[Path]]) -> dict[str, DecodedImage]:
    directory, _ = inbox
    return {
        path.name: decode_and_validate(path, max_pixels=MAX_PIXELS)
        for path in sorted(directory.iterdir())
        if path.name != SHEET_FILE_NAME and path.name not in EXPECTED_QUARANTINE
    }


def test_committed_samples_stay_under_5_mb() -> None:
    files = [path for path in SAMPLES_DIR.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    total = sum(path.stat().st_size for path in files)
    assert total < 5 * 1024 * 1024


def test_every_bundled_photograph_has_its_provenance_recorded() -> None:
    provenance = (SAMPLES_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for bundled in BUNDLED_PHOTOGRAPHS.values():
        path = SAMPLES_DIR / bundled
        assert Path(bundled).name in provenance
        assert hashlib.sha256(path.read_bytes()).hexdigest() in provenance


def test_demo_inbox_holds_every_file_the_sheet_names(inbox: tuple[Path, list[Path]]) -> None:
    directory, written = inbox
    assert written[-1] == directory / SHEET_FILE_NAME
    assert all(path.parent == directory and path.exists() for path in written)
    sheet = read_accession_sheet(directory / SHEET_FILE_NAME)
    images = {path.name for path in written[:-1]}
    assert images == {name for row in sheet.rows for name in row.file_names if (directory / name).exists()}
    assert all(sheet.row_for_file(name) is not None for name in images)
    orphans = [row for row in sheet.rows if not any((directory / name).exists() for name in row.file_names)]
    assert [row.accession_number for row in orphans] == [ORPHAN_ACCESSION]


@pytest.mark.parametrize(("name", "code"), sorted(EXPECTED_QUARANTINE.items()))
def test_bad_files_are_quarantined_for_the_intended_reason(
    inbox: tuple[Path, list[Path]], name: str, code: str
) -> None:
    directory, _ = inbox
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(directory / name, max_pixels=MAX_PIXELS)
    assert caught.value.code == code


def test_good_files_decode_with_their_intended_traits(decoded: dict[str, DecodedImage]) -> None:
    generated = {EXIF_ROTATED, RUBBING_16BIT, TIFF_48BIT, CHINESE_NAMED, NEAR_DUPLICATE, SECOND_VIEW}
    assert set(decoded) == set(BUNDLED_PHOTOGRAPHS) | generated
    assert decoded[EXIF_ROTATED].exif_orientation == 6
    assert (decoded[RUBBING_16BIT].mode, decoded[RUBBING_16BIT].bits_per_sample) == ("I;16", 16)
    assert (decoded[TIFF_48BIT].format, decoded[TIFF_48BIT].bits_per_sample) == ("TIFF", 16)
    assert decoded[CHINESE_NAMED].icc_profile is not None
    upright, _ = normalise_for_viewing(decoded[EXIF_ROTATED])
    assert upright.width > upright.height  # the bowl was photographed in landscape


def test_only_the_intended_pair_are_near_duplicates(decoded: dict[str, DecodedImage]) -> None:
    hashes = {name: perceptual_hashes(normalise_for_viewing(image)[0]).phash for name, image in decoded.items()}
    close = {
        frozenset((a, b))
        for a in hashes
        for b in hashes
        if a < b and hamming_distance(hashes[a], hashes[b]) <= 10
    }
    # views of one object are never compared by ingest, so the vase's two sides may look alike
    assert close - {frozenset((SECOND_VIEW, SECOND_VIEW_OF))} == {frozenset((NEAR_DUPLICATE, NEAR_DUPLICATE_OF))}


def test_blurred_photograph_is_flagged_and_the_chinese_named_scan_reaches_fadgi_1_star(
    decoded: dict[str, DecodedImage],
) -> None:
    def codes(name: str) -> set[str]:
        image = decoded[name]
        return {warning.code for warning in quality_warnings(image, normalise_for_viewing(image)[0])}

    assert "possibly_blurred" in codes("2011.6.21_front.png")  # the motion-blurred clock
    assert "possibly_blurred" not in codes("1987.4.12_front.png")
    assert "below_fadgi_resolution" not in codes(CHINESE_NAMED)
    assert "no_icc_profile" not in codes(CHINESE_NAMED)


def test_generated_files_are_the_same_every_run(inbox: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, first = inbox
    second = write_demo_inbox(tmp_path / "again")
    assert [path.name for path in second] == [path.name for path in first]
    assert [path.read_bytes() for path in second] == [path.read_bytes() for path in first]
