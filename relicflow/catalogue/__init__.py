"""The catalogue database: the system of record for every item, decision and mint."""

from __future__ import annotations

from relicflow.catalogue.catalogue import Catalogue
from relicflow.catalogue.fixity import StoredObjectRef
from relicflow.catalogue.models import ItemStatus, Role

__all__ = ["Catalogue", "ItemStatus", "Role", "StoredObjectRef"]
