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

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Select, String, Text, and_, bindparam, cast, exists, func, not_, or_, select, tuple_
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from relicflow.catalogue.models import (
    DuplicateCandidate,
    Image,
    Item,
    ItemStatus,
    ItemWarning,
    MetadataRecord,
    ReviewDecision,
    SourceFile,
    StatusTransition,
)
from relicflow.errors import QueueQueryInvalid
from tasks.mint_eligibility import REOPENED_FROM
from tasks.relic_grade import CANONICAL_GRADES

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

AWAITING = ItemStatus.awaiting_review.value
# status chips: awaiting review; of those, the ones back after a send-back or a record correction; every undecided item
QUEUE_STATUSES = ("awaiting_review", "resubmitted", "undecided")
UNDECIDED_STATUSES = (ItemStatus.received.value, ItemStatus.processed.value, AWAITING, ItemStatus.resubmitted.value)
SORTS = ("oldest", "newest", "accession", "run")
# what the catalogue records as compliance-relevant before an item may be minted (tasks/mint_eligibility.py):
# a graded relic that needs two reviewers' approvals; a catalogue record not (wholly) from the accession sheet
COMPLIANCE_FLAGS = ("two_approvals", "record_incomplete")
# decided by me (my approval counts, another is needed) / waiting for a second approver (one counts, not mine)
APPROVAL_FILTERS = ("mine", "second")
GRADES = CANONICAL_GRADES
MAX_SEARCH_CHARS = 200
MAX_PAGE_SIZE = 500
MAX_ID = 2**31 - 1  # PostgreSQL integer columns


@dataclass(frozen=True)
class QueueFilter:
    """What the reviewer narrowed the queue to; refuses values it does not know (QueueQueryInvalid)."""

    status: str = AWAITING
    run_id: int | None = None
    grade: str | None = None
    has_warnings: bool = False
    has_duplicates: bool = False
    compliance: str | None = None
    approval: str | None = None
    search: str = ""

    def __post_init__(self) -> None:
        if self.status not in QUEUE_STATUSES:
            raise QueueQueryInvalid("status", f"unknown queue status {self.status!r}; one of {', '.join(QUEUE_STATUSES)}")
        if self.run_id is not None and (isinstance(self.run_id, bool) or not 0 < self.run_id <= MAX_ID):
            raise QueueQueryInvalid("run", f"ingest run id {self.run_id!r} is not a positive number")
        if self.grade is not None and self.grade not in GRADES:
            raise QueueQueryInvalid("grade", f"unknown grade {self.grade!r}; one of {', '.join(GRADES)}")
        if self.compliance is not None and self.compliance not in COMPLIANCE_FLAGS:
            raise QueueQueryInvalid("compliance", f"unknown compliance flag {self.compliance!r}")
        if self.approval is not None and self.approval not in APPROVAL_FILTERS:
            raise QueueQueryInvalid("approval", f"unknown approval filter {self.approval!r}")
        if len(self.search) > MAX_SEARCH_CHARS or any(ord(c) < 32 for c in self.search):
            raise QueueQueryInvalid("search", f"search text longer than {MAX_SEARCH_CHARS} characters or with control characters")


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
class QueuePage:
    """``next_cursor``/``prev_cursor``: pass as ``after``/``before`` for the next/previous page (None: none).
    ``total``: how many items match, counted up to the page's ``count_limit``."""

    rows: list[QueueEntry]
    next_cursor: str | None
    prev_cursor: str | None
    total: int
    total_capped: bool = False  # more than ``total`` match: counting stops there, so a page's cost stays bounded


# -- SQL building blocks, correlated to Item ---------------------------------------------------------


def _current_images(item_id: Any) -> ColumnElement[bool]:
    return and_(Image.item_id == item_id, Image.replaced_by_image_id.is_(None))


def approval_counts_now(decision: Any, item: Any) -> ColumnElement[bool]:
    """An approval row ``decision`` of ``item`` counts for what the object shows now (see the module doc).

    ``item`` is only compared at the level of ``decision``'s own statement; the nested subqueries name the
    decision's item_id, so they never correlate past their enclosing statement."""
    current = aliased(Image)
    seen_text = cast(decision.seen, Text)
    legacy = or_(decision.seen.is_(None), seen_text == "null")
    on_seen = and_(
        not_(legacy),
        decision.seen["record_version"].as_integer() == item.record_version,
        ~exists().where(current.item_id == decision.item_id, current.replaced_by_image_id.is_(None),
                        ~seen_text.contains(current.sha256)),
    )
    one_image = (select(func.count(current.id)).where(current.item_id == decision.item_id, current.replaced_by_image_id.is_(None))
                 .scalar_subquery())
    legacy_ok = and_(
        legacy, item.record_version == 1, one_image == 1,
        exists().where(current.item_id == decision.item_id, current.replaced_by_image_id.is_(None),
                       current.sha256 == decision.image_sha256),
    )
    reopened_after = exists().where(
        StatusTransition.item_id == decision.item_id, StatusTransition.to_status == AWAITING,
        StatusTransition.from_status.in_(REOPENED_FROM), StatusTransition.at >= decision.decided_at)
    return and_(decision.decision == "approve", or_(on_seen, legacy_ok), ~reopened_after)


def _approvals(user_id: Any = None) -> Any:
    """Distinct reviewers whose approval counts, for the outer statement's item (a correlated scalar)."""
    d = aliased(ReviewDecision)
    q = select(func.count(func.distinct(d.reviewer_id))).where(d.item_id == Item.id, approval_counts_now(d, Item))
    if user_id is not None:
        q = q.where(d.reviewer_id == user_id)
    return q.scalar_subquery()


def _items_approved(user_id: Any = None) -> ColumnElement[bool]:
    """Item.id among the items with an approval that counts (by ``user_id``, or by anyone): a set computed
    once from the approval rows, not per item."""
    d, it = aliased(ReviewDecision), aliased(Item)
    q = select(d.item_id).join(it, it.id == d.item_id).where(d.decision == "approve", approval_counts_now(d, it))
    if user_id is not None:
        q = q.where(d.reviewer_id == user_id)
    return Item.id.in_(q)


def _approved_by(user_id: Any) -> ColumnElement[bool]:
    return _items_approved(user_id)


def _any_approval() -> ColumnElement[bool]:
    return _items_approved()


def _warning_is_current(warning: Any) -> ColumnElement[bool]:
    """A warning about a replaced image version is not the reviewer's concern any more. Most objects never had
    an image replaced: for them one index probe answers, without reading the warning's JSON."""
    sha = warning.details["image_sha256"].as_string()
    current, replaced = aliased(Image), aliased(Image)
    return or_(~exists().where(replaced.item_id == warning.item_id, replaced.replaced_by_image_id.is_not(None)),
               sha.is_(None),
               exists().where(current.item_id == warning.item_id, current.replaced_by_image_id.is_(None), current.sha256 == sha))


def _resubmitted() -> ColumnElement[bool]:
    """Back after a send-back or a record correction: a replaced image, or a record version above 1. Both sets
    are small and indexed, so the filter starts from them."""
    came_back = select(Image.item_id).where(Image.replaced_by_image_id.is_not(None)).union(
        select(Item.id).where(Item.record_version > 1))
    return Item.id.in_(came_back)


def _record_incomplete() -> ColumnElement[bool]:
    """What the mint's catalogue-record rule needs (tasks/mint_eligibility.catalogue_record_missing), as the
    item's own columns show it: an accession number read from the sheet, and a name."""
    return or_(Item.accession_number.is_(None), Item.accession_number_source.is_distinct_from("sheet"),
               func.coalesce(func.trim(Item.title), "") == "")


def _conditions(f: QueueFilter, user_id: Any, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.status == "undecided":
        where.append(Item.status.in_(UNDECIDED_STATUSES))
    else:
        where.append(Item.status == AWAITING)
        if f.status == "resubmitted":
            where.append(_resubmitted())
    if f.run_id is not None:
        where.append(Item.ingest_run_id == f.run_id)
    if f.grade is not None:
        where.append(Item.grade == f.grade)
    # correlated EXISTS: a page walks the items in its order and stops when it is full
    if f.has_warnings:
        where.append(exists().where(ItemWarning.item_id == Item.id, _warning_is_current(ItemWarning)))
    if f.has_duplicates:
        where.append(exists().where(DuplicateCandidate.item_id == Item.id))
    if f.compliance == "two_approvals":
        where.append(Item.required_approvals > 1)
    elif f.compliance == "record_incomplete":
        where.append(_record_incomplete())
    if f.approval == "mine":
        where.append(_approved_by(user_id))
    elif f.approval == "second":
        where += [Item.required_approvals > 1, _any_approval(), ~_approved_by(user_id)]
    if f.search.strip():
        # the file names as one set: a search that matches nothing then costs one pass over them, not a probe per item
        where.append(or_(_matches(Item.accession_number, dialect), _matches(Item.title, dialect),
                         Item.id.in_(select(SourceFile.item_id).where(_matches(SourceFile.file_name, dialect)))))
    return where


def _matches(column: Any, dialect: str) -> ColumnElement[bool]:
    """``column`` contains the bound search text, case-insensitively. SQLite's LIKE already ignores (ASCII) case,
    as its lower() only folds ASCII: plain LIKE is the same test without a lower() per row."""
    pattern = bindparam("search", type_=String)
    return column.like(pattern, escape="/") if dialect == "sqlite" else column.ilike(pattern, escape="/")


def search_pattern(text: str) -> str:
    """The LIKE pattern for "contains ``text``": %, _ and the escape character taken literally."""
    return "%" + text.strip().replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


# -- sort keys and cursors ---------------------------------------------------------------------------


def _sort_columns(sort: str) -> tuple[list[Any], bool]:
    """(key columns ending with Item.id, descending)."""
    if sort == "oldest":
        return [Item.id], False
    if sort == "newest":
        return [Item.id], True
    if sort == "accession":
        return [func.coalesce(Item.accession_number, ""), Item.id], False
    if sort == "run":
        return [func.coalesce(Item.ingest_run_id, 0), Item.id], False
    raise QueueQueryInvalid("sort", f"unknown sort {sort!r}; one of {', '.join(SORTS)}")


def _beyond(columns: list[Any], values: Sequence[Any], *, forward: bool, descending: bool) -> ColumnElement[bool]:
    """Rows after (``forward``) or before ``values`` in the order ``columns`` give."""
    later = forward != descending
    left = tuple_(*columns) if len(columns) > 1 else columns[0]
    right = tuple_(*values) if len(values) > 1 else values[0]
    return left > right if later else left < right


def _ordering(columns: list[Any], *, forward: bool, descending: bool) -> list[Any]:
    ascending = forward != descending
    return [c.asc() if ascending else c.desc() for c in columns]


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values), separators=(",", ":"), ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(token: str, sort: str) -> list[Any]:
    """The sort key a cursor names; QueueQueryInvalid for anything this sort's cursor could not be."""
    bad = QueueQueryInvalid("cursor", "the page link is damaged or belongs to another sort order")
    if len(token) > 600:
        raise bad
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    kinds: tuple[type, ...] = (int,) if sort in ("oldest", "newest") else ((str, int) if sort == "accession" else (int, int))
    if (not isinstance(values, list) or len(values) != len(kinds)
            or not all(isinstance(v, k) and not isinstance(v, bool) for v, k in zip(values, kinds))):
        raise bad
    if not 0 <= values[-1] <= MAX_ID or (sort == "run" and not 0 <= values[0] <= MAX_ID):
        raise bad
    return values


def _row_columns(user_id: Any) -> list[Any]:
    current = aliased(Image)
    warning = aliased(ItemWarning)
    return [
        Item.id, Item.status, Item.accession_number, Item.title, Item.grade, Item.ingest_run_id, Item.created_at,
        Item.required_approvals,
        _approvals().label("approvals"),
        _approvals(user_id).label("mine"),
        select(func.count(func.distinct(warning.code))).where(warning.item_id == Item.id, _warning_is_current(warning))
        .scalar_subquery().label("warnings"),
        select(func.count(DuplicateCandidate.id)).where(DuplicateCandidate.item_id == Item.id).scalar_subquery().label("duplicates"),
        select(func.count(current.id)).where(current.item_id == Item.id, current.replaced_by_image_id.is_(None))
        .scalar_subquery().label("views"),
        exists().where(_current_images(Item.id), Image.thumbnail_key.is_not(None)).label("thumbnail"),
        or_(Item.record_version > 1, exists().where(Image.item_id == Item.id, Image.replaced_by_image_id.is_not(None)))
        .label("resubmitted"),
    ]


USER = bindparam("user_id", type_=Integer)  # statements are built once per shape and cached; values are bound


def _key_params(values: Sequence[Any]) -> list[Any]:
    return [bindparam(f"key{i}") for i in range(len(values))]


def _bound(values: Sequence[Any] | None, user_id: int, f: QueueFilter | None = None) -> dict[str, Any]:
    search = {"search": search_pattern(f.search)} if f is not None and f.search.strip() else {}
    return {"user_id": user_id, **search, **{f"key{i}": v for i, v in enumerate(values or ())}}


def _shape(f: QueueFilter) -> QueueFilter:
    """The filter as a statement's cache key: the search text is bound, not built in."""
    return replace(f, search="?") if f.search.strip() else f


@lru_cache(maxsize=256)
def _page_statement(f: QueueFilter, sort: str, forward: bool, anchored: bool, limit: int, dialect: str) -> Select[Any]:
    columns, descending = _sort_columns(sort)
    where = _conditions(f, USER, dialect)
    if anchored:
        where.append(_beyond(columns, _key_params(columns), forward=forward, descending=descending))
    return (select(*_row_columns(USER), *columns[:-1]).where(*where)
            .order_by(*_ordering(columns, forward=forward, descending=descending)).limit(limit + 1))


@lru_cache(maxsize=256)
def _first_beyond_statement(f: QueueFilter, sort: str, forward: bool, dialect: str, *, next_to_review: bool = False) -> Select[Any]:
    """The first item after (``forward``) or before a sort key, in the filtered order; ``next_to_review``: only
    items the user can still decide, other than the one the key is of (``key_item``)."""
    columns, descending = _sort_columns(sort)
    where = [*_conditions(f, USER, dialect), _beyond(columns, _key_params(columns), forward=forward, descending=descending)]
    if next_to_review:
        where += [Item.status == AWAITING, ~_approved_by(USER)]
    return select(Item.id).where(*where).order_by(*_ordering(columns, forward=forward, descending=descending)).limit(1)


@lru_cache(maxsize=64)
def _first_to_review_statement(f: QueueFilter, sort: str, dialect: str) -> Select[Any]:
    columns, descending = _sort_columns(sort)
    where = [*_conditions(f, USER, dialect), Item.status == AWAITING, ~_approved_by(USER), Item.id != bindparam("key_item")]
    return select(Item.id).where(*where).order_by(*_ordering(columns, forward=True, descending=descending)).limit(1)


@lru_cache(maxsize=256)
def _count_statement(f: QueueFilter, count_limit: int | None, dialect: str) -> Select[Any]:
    if count_limit is None:
        return select(func.count()).select_from(Item).where(*_conditions(f, USER, dialect))
    return select(func.count()).select_from(select(Item.id).where(*_conditions(f, USER, dialect)).limit(count_limit + 1).subquery())


CHIPS: dict[str, QueueFilter] = {
    "awaiting_review": QueueFilter(), "resubmitted": QueueFilter(status="resubmitted"),
    "undecided": QueueFilter(status="undecided"), "warnings": QueueFilter(has_warnings=True),
    "duplicates": QueueFilter(has_duplicates=True),
    **{flag: QueueFilter(compliance=flag) for flag in COMPLIANCE_FLAGS},
    **{kind: QueueFilter(approval=kind) for kind in APPROVAL_FILTERS},
}
PERSONAL_CHIPS = APPROVAL_FILTERS  # their counts depend on who asks


class ReviewQueueOperations:
    """Mixed into :class:`~relicflow.catalogue.Catalogue`."""

    def review_queue_page(self: Catalogue, queue_filter: QueueFilter = QueueFilter(), sort: str = "oldest", *,  # type: ignore[misc]
                          user_id: int, after: str | None = None, before: str | None = None, limit: int = 50,
                          count_limit: int = 1000) -> QueuePage:
        """One page of the filtered queue in ``sort`` order: after the ``after`` cursor, before the ``before``
        one, or the first page. A fixed number of statements, whatever the catalogue holds; the matching items
        are counted up to ``count_limit`` (a first page that is not full is its own count; a search's matches
        beyond its first page are not counted: ``total_capped`` then says "at least")."""
        if not 0 < limit <= MAX_PAGE_SIZE:
            raise QueueQueryInvalid("limit", f"page size {limit} is not between 1 and {MAX_PAGE_SIZE}")
        columns, _ = _sort_columns(sort)
        shape, dialect = _shape(queue_filter), self.engine.dialect.name
        forward = before is None
        anchor = decode_cursor(after if forward else before, sort) if (after or before) else None  # type: ignore[arg-type]
        with self.read_session() as s:
            fetched = list(s.execute(_page_statement(shape, sort, forward, anchor is not None, limit, dialect), _bound(anchor, user_id, queue_filter)))
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
                return s.scalar(_first_beyond_statement(shape, sort, forward_, dialect), _bound(values, user_id, queue_filter)) is not None

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
                total = s.scalar(_count_statement(shape, count_limit, dialect), _bound(None, user_id, queue_filter)) or 0
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
                    counts[name] = s.scalar(_count_statement(CHIPS[name], None, self.engine.dialect.name), _bound(None, user_id)) or 0
        return counts

    def queue_runs(self: Catalogue) -> list[int]:  # type: ignore[misc]
        """Ingest runs with items awaiting review, newest first (for the run filter)."""
        with self.read_session() as s:
            q = (select(Item.ingest_run_id).where(Item.status == AWAITING, Item.ingest_run_id.is_not(None))
                 .group_by(Item.ingest_run_id).order_by(Item.ingest_run_id.desc()))
            return [run for run in s.scalars(q)]

    def _sort_key_of(self: Catalogue, s: Any, item_id: int, sort: str) -> list[Any] | None:  # type: ignore[misc]
        columns, _ = _sort_columns(sort)
        row = s.execute(select(*columns).where(Item.id == item_id)).first()
        return list(row) if row is not None else None

    def queue_neighbours(self: Catalogue, item_id: int, queue_filter: QueueFilter = QueueFilter(),  # type: ignore[misc]
                         sort: str = "oldest", *, user_id: int) -> tuple[int | None, int | None]:
        """(previous id, next id) around ``item_id`` in the filtered order; the item itself need not match the
        filter any more (e.g. just decided). One indexed statement each."""
        shape, dialect = _shape(queue_filter), self.engine.dialect.name
        with self.read_session() as s:
            key = self._sort_key_of(s, item_id, sort)
            if key is None:
                return None, None
            before = s.scalar(_first_beyond_statement(shape, sort, False, dialect), _bound(key, user_id, queue_filter))
            after = s.scalar(_first_beyond_statement(shape, sort, True, dialect), _bound(key, user_id, queue_filter))
        return before, after

    def next_to_review(self: Catalogue, item_id: int, queue_filter: QueueFilter = QueueFilter(),  # type: ignore[misc]
                       sort: str = "oldest", *, user_id: int) -> int | None:
        """After deciding ``item_id``: the next item in the filtered order that awaits review and this reviewer
        has not approved, wrapping to the start of the order; None when there is none."""
        shape, dialect = _shape(queue_filter), self.engine.dialect.name
        with self.read_session() as s:
            key = self._sort_key_of(s, item_id, sort)
            if key is not None:
                found = s.scalar(_first_beyond_statement(shape, sort, True, dialect, next_to_review=True),
                                  _bound(key, user_id, queue_filter))
                if found is not None:
                    return found
            return s.scalar(_first_to_review_statement(shape, sort, dialect), {**_bound(None, user_id, queue_filter), "key_item": item_id})
