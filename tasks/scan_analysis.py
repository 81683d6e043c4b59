"""All the pixel work for one scan, as one pure function that can run in an isolated worker process.

Decoding a file from outside is the riskiest thing relicflow does (a decoder may hang, crash or eat
memory on hostile input), so everything that touches pixels happens here, and only plain data comes
back: the facts about the image, its access JPEGs, hashes, technical metadata and warnings. Bad input
raises :class:`~relicflow.errors.InputRejected`, which crosses the process boundary intact (relicflow's
errors pickle with their code, messages and details).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.cleanup import make_derivatives, normalise_for_viewing, viewing_warnings
from tasks.enrichment import technical_metadata
from tasks.hashing import perceptual_hashes
from tasks.quality import quality_warnings
from tasks.scan_warnings import ScanWarning
from tasks.validation import apply_decoder_limits, decode_and_validate


@dataclass(frozen=True)
class AnalysisLimits:
    max_pixels: int
    access_long_side: int = 2048
    thumbnail_long_side: int = 400


@dataclass(frozen=True)
class ScanAnalysis:
    format: str
    width: int
    height: int
    mode: str
    bits_per_sample: int
    access_jpeg: bytes
    thumbnail_jpeg: bytes
    derivation: list[dict[str, Any]]
    hashes: dict[str, str]
    technical: dict[str, Any]
    findings: list[ScanWarning]


def analyse_scan(path: str | Path, limits: AnalysisLimits, *, sha256: str, size_bytes: int) -> ScanAnalysis:
    """Validate and decode the file, make the upright sRGB view, its hashes, JPEGs and warnings.

    Raises InputRejected for bad input."""
    apply_decoder_limits(limits.max_pixels)  # this process's own Pillow guard (workers start fresh)
    decoded = decode_and_validate(Path(path), max_pixels=limits.max_pixels)
    try:
        normalised, operations = normalise_for_viewing(decoded)
        hashes = perceptual_hashes(normalised)
        derivatives = make_derivatives(decoded, access_long_side=limits.access_long_side,
                                       thumbnail_long_side=limits.thumbnail_long_side, normalised=(normalised, operations))
        # pages, trailing data, colour, range; then resolution, depth, clipping, blur
        findings = [*decoded.warnings, *viewing_warnings(decoded, operations), *quality_warnings(decoded, normalised)]
        technical = technical_metadata(decoded, size_bytes=size_bytes, sha256=sha256)
        return ScanAnalysis(
            format=decoded.format, width=decoded.width, height=decoded.height, mode=decoded.mode,
            bits_per_sample=decoded.bits_per_sample, access_jpeg=derivatives.access_jpeg,
            thumbnail_jpeg=derivatives.thumbnail_jpeg, derivation=derivatives.operations,
            hashes={"phash": hashes.phash, "dhash": hashes.dhash}, technical=technical, findings=findings,
        )
    finally:
        decoded.image.close()


def warm_up() -> None:
    """Analyse a tiny image once, so the lazy imports and set-up of a first call (scipy's FFT for pHash,
    Pillow's plugins, OpenCV) are paid by the process that forks the decoding workers, not by each scan's
    time limit."""
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="relicflow-warm-up-") as tmp:
        sample = Path(tmp) / "warm-up.png"
        Image.new("RGB", (64, 48), (120, 90, 60)).save(sample)
        analyse_scan(sample, AnalysisLimits(max_pixels=64 * 48), sha256="0" * 64, size_bytes=sample.stat().st_size)
