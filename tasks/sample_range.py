"""Scale deep samples (12/16/32-bit integer, float) to 8 bits by the range they really use, never clipping.

A container says how wide a sample may be, not how wide the data are: 12-bit sensor data sit in 16-bit
TIFFs, and small counts in int32 ones. Shifting by the container width makes such files nearly black.
The white level comes, in this order, from what the file declares (TIFF MaxSampleValue / SMaxSampleValue,
PNG sBIT, a BitsPerSample below the container), from the float convention (0.0-1.0), or else from the
data; the record says which, and ``range_inferred`` is true when the data decided.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK_ELEMENTS = 1 << 22  # scale float arithmetic in blocks, so a large master needs no float copy at once


def scale_to_8bit(
    samples: np.ndarray,
    *,
    sample_format: str,
    container_bits: int,
    declared_white: float | None = None,
    white_from: str | None = None,
) -> tuple[np.ndarray, dict]:
    """``samples`` (any shape, colour channels only) as uint8 and the ``to_8bit`` operation record.

    ``sample_format`` is ``"uint"``, ``"int"`` or ``"float"``; ``declared_white`` is the white level the
    file states (``white_from`` names where it said so); one that is not a finite positive number declares nothing.
    """
    if declared_white is not None and not (math.isfinite(declared_white) and declared_white > 0):
        declared_white, white_from = None, None
    data_min, data_max = _finite_range(samples)
    black, white, source, inferred = _levels(
        data_min, data_max, sample_format=sample_format, container_bits=container_bits,
        declared_white=declared_white, white_from=white_from,
    )
    record: dict = {
        "op": "to_8bit", "method": "scale", "from_bits": container_bits, "sample_format": sample_format,
        "input_black": _plain(black), "input_white": _plain(white), "white_from": source,
        "range_inferred": inferred, "data_min": _plain(data_min), "data_max": _plain(data_max),
    }
    if declared_white is not None and source != white_from:
        record["declared_white_exceeded"] = _plain(declared_white)
    shift = _shift_for(black, white, samples.dtype)
    if shift is not None:
        record["formula"] = f"v >> {shift}" if shift else "v"
        return (samples.astype(np.int64, copy=False) >> shift).astype(np.uint8), record
    record["formula"] = f"round((v - {_plain(black)}) * 255 / {_plain(white - black)})"
    return _linear(samples, black, white), record


def scale_alpha(alpha: np.ndarray, *, sample_format: str, container_bits: int) -> np.ndarray:
    """Opacity is always full-range (or 0.0-1.0): no inference, which would make faint masks opaque."""
    if sample_format == "float":
        _low, high = _finite_range(alpha)
        return _linear(alpha, 0.0, max(1.0, high))
    bits = container_bits - 1 if sample_format == "int" else container_bits
    return _linear(np.clip(alpha, 0, None), 0.0, float((1 << bits) - 1))


def _levels(data_min: float, data_max: float, *, sample_format: str, container_bits: int,
            declared_white: float | None, white_from: str | None) -> tuple[float, float, str, bool]:
    """(black, white, where white came from, inferred from the data?)."""
    if sample_format == "float":
        if declared_white and data_min >= 0 and data_max <= declared_white:
            return 0.0, float(declared_white), white_from or "declared", False
        if data_min >= 0 and data_max <= 1.0:
            return 0.0, 1.0, "float_convention", False
        black = min(0.0, data_min)
        return black, max(data_max, black + 1e-6), "data", True
    if data_min < 0:  # signed data below zero: the whole used range, there is no other honest choice
        return data_min, max(data_max, data_min + 1), "data", True
    if declared_white and data_max <= declared_white:
        return 0, declared_white, white_from or "declared", False
    container = container_bits - 1 if sample_format == "int" else container_bits
    used = max(8, int(data_max).bit_length())
    used += used % 2  # sensors deliver 10, 12, 14 or 16 bits
    if container > 8 and used < container:
        return 0, (1 << used) - 1, "data", True
    return 0, (1 << container) - 1, "container", False


def _shift_for(black: float, white: float, dtype: np.dtype) -> int | None:
    """A right shift gives the same result as scaling when white is 2**n - 1 (and is what 8-bit readers do)."""
    if black != 0 or dtype.kind not in "ui":
        return None
    white_int = int(white)
    if white_int != white or (white_int + 1) & white_int or white_int < 255:
        return None
    return (white_int + 1).bit_length() - 1 - 8


def _linear(samples: np.ndarray, black: float, white: float) -> np.ndarray:
    out = np.empty(samples.shape, np.uint8)
    flat_in, flat_out = samples.reshape(-1), out.reshape(-1)
    gain = 255.0 / (white - black)
    for start in range(0, flat_in.size, CHUNK_ELEMENTS):
        block = flat_in[start:start + CHUNK_ELEMENTS].astype(np.float64)
        if samples.dtype.kind == "f":  # NaN is black, +inf white, -inf black
            block = np.nan_to_num(block, nan=black, posinf=white, neginf=black)
        # rounding error only: black <= v <= white holds for every finite sample by construction
        flat_out[start:start + CHUNK_ELEMENTS] = np.clip(np.rint((block - black) * gain), 0, 255)
    return out


def _finite_range(samples: np.ndarray) -> tuple[float, float]:
    if samples.size == 0:
        return 0, 0
    if samples.dtype.kind == "f":
        finite = samples[np.isfinite(samples)]
        if finite.size == 0:
            return 0.0, 0.0
        return float(finite.min()), float(finite.max())
    return int(samples.min()), int(samples.max())


def _plain(value: float) -> float | int:
    """JSON-friendly: ints stay ints, floats keep 6 significant digits."""
    if isinstance(value, (int, np.integer)) or float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return float(f"{float(value):.6g}")
