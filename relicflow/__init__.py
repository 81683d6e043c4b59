"""relicflow: museum relic scans to regulated digital collections, through a human review gate."""

from __future__ import annotations

__version__ = "0.1.0"
