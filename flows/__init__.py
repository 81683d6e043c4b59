"""Prefect flows: they orchestrate; the work lives in ``tasks`` and the records in the catalogue."""
