"""The review queue at scale: one page of the filtered, sorted queue, its counts and an item's neighbours,
each in a few indexed statements whose cost does not grow with the catalogue.

Pages are keyset-paginated (the cursor is the last row's sort key and id), so a page after a cursor
holds neither duplicates nor gaps while other reviewers decide items in between. Rows carry only what
the queue table shows; no item is loaded with all its related rows.

Approvals are counted in SQL by the rule :mod:`relicflow.catalogue.reviews` applies (an approval counts
for what the object shows now, since its last reopen): the decision's recorded ``seen`` holds every
current image's SHA-256 and the current record version (a legacy decision without ``seen``: one image,
record version 1, that image), and no administrator's reopen came after it. The reopen is compared by
time (``status_transitions.at`` against ``decided_at``, both written in serialised write transactions);
the item page keeps computing the exact rule from the decisions themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from relicflow.catalogue import search_index
from relicflow.catalogue.models import Image, Item, ItemStatus, SourceFile
from relicflow.catalogue.review_queue_filter import (  # noqa: F401 - the queue's public names, re-exported
    APPROVAL_FILTERS, AWAITING, CHIPS, COMPLIANCE_FLAGS, GRADES, MAX_PAGE_SIZE, PERSONAL_CHIPS, QUEUE_STATUSES, SORTS,
    QueueFilter, decode_cursor, encode_cursor, search_pattern,
)
from relicflow.catalogue.review_queue_sql import (
    SQLITE_TRIGRAM,
    bound_values, count_statement, first_beyond_statement, first_to_review_statement, page_statement, sort_columns,
    statement_shape,
)
from relicflow.errors import QueueQueryInvalid
from tasks.object_views import view_rank

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue


@dataclass(frozen=True)
class QueueEntry:
    """One row of the queue table: what the table shows, nothing more."""

    id: int
    status: str
    accession_number: str | None
    title: str | None
    grade: str | None
    ingest_run_id: int | None
    created_at: datetime
    required_approvals: int
    approvals: int
    approved_by_me: bool
    warning_count: int
    duplicate_count: int
    view_count: int
    has_thumbnail: bool
    resubmitted: bool
    file_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageKeys:
    access_key: str | None
    thumbnail_key: str | None


@dataclass(frozen=True)
class QueuePage:
    """``next_cursor``/``prev_cursor``: pass as ``after``/``before`` for the next/previous page (None: none).
    ``total``: how many items match, counted up to the page's ``count_limit``."""

    rows: list[QueueEntry]
    next_cursor: str | None
    prev_cursor: str | None
    total: int
    total_capped: bool = False  # more than ``total`` match: counting stops there, so a page's cost stays bounded


class ReviewQueueOperations:
    """Mixed into :class:`~relicflow.catalogue.Catalogue`."""

    def queue_dialect(self: Catalogue) -> str:  # type: ignore[misc]
        """The database's name for the queue's statements; ``sqlite+trigram`` when SQLite has the search index
        (relicflow/catalogue/search_index.py). Asked once: the index comes with a migration, before any queue."""
        name: str | None = self.__dict__.get("_queue_dialect")
        if name is None:
            name = self.engine.dialect.name
            if name == "sqlite":
                with self.engine.connect() as conn:
                    name = SQLITE_TRIGRAM if search_index.has_sqlite_index(conn) else name
            self.__dict__["_queue_dialect"] = name
        return name

    def review_queue_page(self: Catalogue, queue_filter: QueueFilter = QueueFilter(), sort: str = "oldest", *,  # type: ignore[misc]
                          user_id: int, after: str | None = None, before: str | None = None, limit: int = 50,
                          count_limit: int = 1000) -> QueuePage:
        """One page of the filtered queue in ``sort`` order: after the ``after`` cursor, before the ``before``
        one, or the first page. A fixed number of statements, whatever the catalogue holds; the matching items
        are counted up to ``count_limit`` (a first page that is not full is its own count; a search's matches
        beyond its first page are not counted: ``total_capped`` then says "at least")."""
        if not 0 < limit <= MAX_PAGE_SIZE:
            raise QueueQueryInvalid("limit", f"page size {limit} is not between 1 and {MAX_PAGE_SIZE}")
        columns, _ = sort_columns(sort)
        shape, dialect = statement_shape(queue_filter), self.queue_dialect()
        forward = before is None
        anchor = decode_cursor(after if forward else before, sort) if (after or before) else None  # type: ignore[arg-type]
        with self.read_session() as s:
            fetched = list(s.execute(page_statement(shape, sort, forward, anchor is not None, limit, dialect), bound_values(anchor, user_id, queue_filter)))
            more = len(fetched) > limit
            fetched = fetched[:limit]
            if not forward:
                fetched.reverse()
            keys = [[*r[len(r) - len(columns) + 1:], r.id] for r in fetched]
            names: dict[int, list[str]] = {}
            if fetched:
                for item_id, name in s.execute(select(SourceFile.item_id, SourceFile.file_name)
                                               .where(SourceFile.item_id.in_([r.id for r in fetched])).order_by(SourceFile.file_name)):
                    if name not in names.setdefault(item_id, []):
                        names[item_id].append(name)

            def rows_beyond(values: list[Any], forward_: bool) -> bool:
                return s.scalar(first_beyond_statement(shape, sort, forward_, dialect), bound_values(values, user_id, queue_filter)) is not None

            if forward:
                has_next = more
                has_prev = bool(keys) and anchor is not None and rows_beyond(keys[0], False)
            else:
                has_prev = more
                has_next = bool(keys) and rows_beyond(keys[-1], True)
            if anchor is None and not more:
                total, capped = len(fetched), False
            elif queue_filter.search.strip():  # counting a search's matches is another pass over every item: not done
                total, capped = len(fetched), True
            else:
                total = s.scalar(count_statement(shape, count_limit, dialect), bound_values(None, user_id, queue_filter)) or 0
                total, capped = min(total, count_limit), total > count_limit
        rows = [QueueEntry(
            id=r.id, status=r.status, accession_number=r.accession_number, title=r.title, grade=r.grade,
            ingest_run_id=r.ingest_run_id, created_at=r.created_at, required_approvals=r.required_approvals,
            approvals=r.approvals or 0, approved_by_me=bool(r.mine), warning_count=r.warnings or 0,
            duplicate_count=r.duplicates or 0, view_count=r.views or 0, has_thumbnail=bool(r.thumbnail),
            resubmitted=bool(r.resubmitted), file_names=tuple(names.get(r.id, ())),
        ) for r in fetched]
        return QueuePage(rows=rows, next_cursor=encode_cursor(keys[-1]) if has_next and keys else None,
                         prev_cursor=encode_cursor(keys[0]) if has_prev and keys else None, total=total, total_capped=capped)

    def queue_counts(self: Catalogue, *, user_id: int, chips: Sequence[str] | None = None) -> dict[str, int]:  # type: ignore[misc]
        """How many items each filter chip would show (every chip within the items awaiting review, except
        ``undecided``), and ``quarantined``: one COUNT each, no rows loaded. ``chips``: only these (names of
        CHIPS, or "quarantined")."""
        wanted = list(CHIPS) + ["quarantined"] if chips is None else list(chips)
        counts: dict[str, int] = {}
        with self.read_session() as s:
            for name in wanted:
                if name == "quarantined":
                    q: Any = select(func.count()).select_from(Item).where(Item.status == ItemStatus.quarantined.value)
                    counts[name] = s.scalar(q) or 0
                else:
                    counts[name] = s.scalar(count_statement(CHIPS[name], None, self.queue_dialect()), bound_values(None, user_id)) or 0
        return counts

    def queue_runs(self: Catalogue) -> list[int]:  # type: ignore[misc]
        """Ingest runs with items awaiting review, newest first (for the run filter)."""
        with self.read_session() as s:
            q = (select(Item.ingest_run_id).where(Item.status == AWAITING, Item.ingest_run_id.is_not(None))
                 .group_by(Item.ingest_run_id).order_by(Item.ingest_run_id.desc()))
            return [run for run in s.scalars(q)]

    def _sort_key_of(self: Catalogue, s: Any, item_id: int, sort: str) -> list[Any] | None:  # type: ignore[misc]
        columns, _ = sort_columns(sort)
        row = s.execute(select(*columns).where(Item.id == item_id)).first()
        return list(row) if row is not None else None

    def queue_neighbours(self: Catalogue, item_id: int, queue_filter: QueueFilter = QueueFilter(),  # type: ignore[misc]
                         sort: str = "oldest", *, user_id: int) -> tuple[int | None, int | None]:
        """(previous id, next id) around ``item_id`` in the filtered order; the item itself need not match the
        filter any more (e.g. just decided). One indexed statement each."""
        shape, dialect = statement_shape(queue_filter), self.queue_dialect()
        with self.read_session() as s:
            key = self._sort_key_of(s, item_id, sort)
            if key is None:
                return None, None
            before = s.scalar(first_beyond_statement(shape, sort, False, dialect), bound_values(key, user_id, queue_filter))
            after = s.scalar(first_beyond_statement(shape, sort, True, dialect), bound_values(key, user_id, queue_filter))
        return before, after

    def next_to_review(self: Catalogue, item_id: int, queue_filter: QueueFilter = QueueFilter(),  # type: ignore[misc]
                       sort: str = "oldest", *, user_id: int) -> int | None:
        """After deciding ``item_id``: the next item in the filtered order that awaits review and this reviewer
        has not approved, wrapping to the start of the order; None when there is none."""
        shape, dialect = statement_shape(queue_filter), self.queue_dialect()
        with self.read_session() as s:
            key = self._sort_key_of(s, item_id, sort)
            if key is not None:
                found = s.scalar(first_beyond_statement(shape, sort, True, dialect, next_to_review=True),
                                  bound_values(key, user_id, queue_filter))
                if found is not None:
                    return found
            return s.scalar(first_to_review_statement(shape, sort, dialect), {**bound_values(None, user_id, queue_filter), "key_item": item_id})

    def front_image_keys(self: Catalogue, item_id: int) -> ImageKeys | None:  # type: ignore[misc]
        """Storage keys of the object's first current photograph (front first): what the queue's thumbnails and
        the item's first image serve, read without loading the item and all its rows (one per thumbnail)."""
        with self.read_session() as s:
            rows = s.execute(select(Image.id, Image.view, Image.view_label, Image.access_key, Image.thumbnail_key)
                             .where(Image.item_id == item_id, Image.replaced_by_image_id.is_(None)))
            first = min(rows, key=lambda r: (*view_rank(r.view, r.view_label), r.id), default=None)
        return ImageKeys(first.access_key, first.thumbnail_key) if first is not None else None
