"""Pydantic models of every record that crosses a boundary, and the JSON Schema / OpenAPI exported from them.

Each boundary has its own module (``schemas.issuer`` is the issuer contract); this package imports
nothing so that importing one contract never drags in the others.
"""

from __future__ import annotations
