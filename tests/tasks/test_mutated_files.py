"""Seeded byte mutations of valid files: every outcome is a decoded scan or a coded rejection, nothing else.

Bounded and deterministic (a fixed seed and count), so a failure here names a file that can be rebuilt.
The pixel stages run on what decodes: normalise, derivatives, quality and viewing warnings. The
property-based test (test_scan_fuzz.py) takes mutants of the same seeds through the whole of ingest.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scan_seeds import seed_files

from relicflow.errors import InputRejected
from tasks.cleanup import make_derivatives, normalise_for_viewing, viewing_warnings
from tasks.quality import quality_warnings
from tasks.validation import decode_and_validate

MUTATIONS_PER_SEED = 60


SEEDS = seed_files()


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        at = int(rng.integers(0, len(out)))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            out[at] = int(rng.integers(0, 256))
        elif kind == 1:
            del out[at:at + int(rng.integers(1, 64))]
        elif kind == 2:
            out[at:at] = rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
        else:  # the values that break parsers: all ones, zero, huge, one
            out[at:at + 4] = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x01\x00\x00")[
                int(rng.integers(0, 4))]
    return bytes(out)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_are_decoded_or_rejected_with_a_code(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(sorted(SEEDS).index(name))
    outcomes: Counter[str] = Counter()
    for index in range(MUTATIONS_PER_SEED):
        path = tmp_path / f"{index}-{name}"
        path.write_bytes(_mutate(SEEDS[name], rng))
        try:
            decoded = decode_and_validate(path, max_pixels=5_000_000)
        except InputRejected as rejected:
            assert rejected.message_en and rejected.message_zh
            outcomes[rejected.code] += 1
            continue
        normalised, operations = normalise_for_viewing(decoded)
        make_derivatives(decoded, normalised=(normalised, operations))
        quality_warnings(decoded, normalised)
        viewing_warnings(decoded, operations)
        outcomes["decoded"] += 1
    assert sum(outcomes.values()) == MUTATIONS_PER_SEED
    assert set(outcomes) <= {"decoded", "truncated_image", "corrupt_image", "not_an_image", "unsupported_format",
                             "decompression_bomb"}
