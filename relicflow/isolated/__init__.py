"""Run decoding and pixel work in separate processes, bounded in time and memory.

See :class:`IsolatedWorkers`; the outcomes other than a result or the function's own exception are the
:class:`relicflow.errors.IsolationError` family.
"""

from __future__ import annotations

from relicflow.isolated.pool import IsolatedWorkers

__all__ = ["IsolatedWorkers"]
