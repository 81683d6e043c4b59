"""Functions bench_isolated.py sends to isolated workers.

A worker imports a function's module by name, so they cannot live in the benchmark script (its module
is ``__main__`` there); this module is found through the script's directory on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path


def nothing() -> None:
    return None


def decode_size(path: str) -> tuple[int, int]:
    """Validate and fully decode one scan; only its size comes back."""
    from tasks.validation import decode_and_validate

    decoded = decode_and_validate(Path(path), max_pixels=500_000_000)
    return decoded.width, decoded.height


def decode_to_access_jpeg(path: str) -> bytes:
    """Decode, normalise and encode the 2048-px access copy; its JPEG bytes come back."""
    from tasks.cleanup import make_derivatives
    from tasks.validation import decode_and_validate

    return make_derivatives(decode_and_validate(Path(path), max_pixels=500_000_000)).access_jpeg


def filled_bytes(size: int) -> bytes:
    return b"Z" * size


def import_preloads(modules: list[str]) -> None:
    """What a spawned process must do before it can work: import the heavy modules itself."""
    import importlib

    for name in modules:
        importlib.import_module(name)
