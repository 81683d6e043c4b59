"""Perceptual hashes of the normalised image, and near-duplicate search over many stored hashes.

pHash (64-bit, DCT) is the duplicate test: re-compression, resizing, small brightness changes keep it
within a few bits, unrelated pictures sit around 32 bits apart (reference.md). dHash is kept beside it
as a cheap second opinion. Quarter-turns, mirrors and heavy crops are not caught by either (yet).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image

# imagehash shrinks to 32x32 with Lanczos; box-reducing huge images first makes that cheap and
# changes nothing that matters (the DCT only keeps the lowest 8x8 frequencies).
HASH_PREVIEW_LONG_SIDE = 512
_HEX64 = re.compile(r"[0-9a-fA-F]{16}")


@dataclass(frozen=True)
class PerceptualHashes:
    """Two 64-bit hashes as 16 lowercase hex characters each."""

    phash: str
    dhash: str


def perceptual_hashes(image: Image.Image) -> PerceptualHashes:
    """Hash the normalised (upright, sRGB, 8-bit) image; the caller must not pass the raw master."""
    factor = max(image.size) // HASH_PREVIEW_LONG_SIDE
    preview = image.reduce(factor) if factor >= 2 else image
    preview = preview.convert("L") if preview.mode != "L" else preview
    return PerceptualHashes(phash=str(imagehash.phash(preview)), dhash=str(imagehash.dhash(preview)))


def hamming_distance(a: str, b: str) -> int:
    """Number of differing bits between two 64-bit hex hashes."""
    return (_parse_hex64(a) ^ _parse_hex64(b)).bit_count()


def near_duplicates(
    query: str, candidates: Sequence[tuple[int, str]], *, max_distance: int
) -> list[tuple[int, int]]:
    """``(candidate_id, distance)`` for every candidate within ``max_distance``, nearest first.

    Ties are ordered by id so results are stable. For many queries against the same catalogue,
    build a :class:`HammingIndex` once: converting a million hex strings costs more than the search.
    """
    return HammingIndex.from_pairs(candidates).search(query, max_distance=max_distance)


@dataclass(frozen=True, eq=False)
class HammingIndex:
    """Hashes held as a uint64 array: one query is one xor and one popcount over the whole array."""

    ids: np.ndarray
    codes: np.ndarray

    @classmethod
    def from_pairs(cls, candidates: Sequence[tuple[int, str]]) -> HammingIndex:
        count = len(candidates)
        ids = np.fromiter((pair[0] for pair in candidates), dtype=np.int64, count=count)
        hashes = [pair[1] for pair in candidates]
        if any(len(code) != 16 for code in hashes):
            bad = next(code for code in hashes if len(code) != 16)
            raise ValueError(f"not a 64-bit hex hash: {bad!r}")
        try:
            raw = bytes.fromhex("".join(hashes))
        except ValueError as exc:
            raise ValueError(f"not a 64-bit hex hash among the candidates: {exc}") from exc
        codes = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
        return cls(ids=ids, codes=codes)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def search(self, query: str, *, max_distance: int) -> list[tuple[int, int]]:
        distances = np.bitwise_count(self.codes ^ np.uint64(_parse_hex64(query)))
        hits = np.flatnonzero(distances <= max_distance)
        hit_ids, hit_distances = self.ids[hits], distances[hits]
        order = np.lexsort((hit_ids, hit_distances))
        return [(int(hit_ids[i]), int(hit_distances[i])) for i in order]


def _parse_hex64(code: str) -> int:
    if not _HEX64.fullmatch(code):
        raise ValueError(f"not a 64-bit hex hash: {code!r}")
    return int(code, 16)
