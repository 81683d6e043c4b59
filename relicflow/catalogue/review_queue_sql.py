"""The review queue's SQL: filters, sort keys and the few statements a page, its counts and an item's
neighbours need, built once per shape (filter, sort, direction, dialect) and cached; values are bound.

Approvals are counted by the rule :mod:`relicflow.catalogue.reviews` applies (see
:mod:`relicflow.catalogue.review_queue`). Portable SQLAlchemy 2: SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer, Select, String, Text, and_, bindparam, cast, exists, func, literal_column, not_, or_, select, table, text, tuple_,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from relicflow.catalogue import search_index
from relicflow.catalogue.models import DuplicateCandidate, Image, Item, ItemWarning, ReviewDecision, SourceFile, StatusTransition
from relicflow.catalogue.review_queue_filter import AWAITING, GRADES, SORTS, UNDECIDED_STATUSES, QueueFilter, search_pattern
from relicflow.errors import QueueQueryInvalid
from tasks.mint_eligibility import REOPENED_FROM

SQLITE_TRIGRAM = "sqlite+trigram"  # the queue's "dialect" for a SQLite catalogue with the search index
INDEXED_SEARCH = "?trigram"  # a statement shape's search: long enough for the trigram index

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
    if f.run_id is not None:  # bound, like the search: one statement for every run (statement_shape)
        where.append(Item.ingest_run_id == bindparam("run_id", type_=Integer))
    if f.grade is not None:
        where.append(Item.grade == bindparam("grade", type_=String))
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
    if f.search == INDEXED_SEARCH and dialect == SQLITE_TRIGRAM:
        # the trigram index (search_index.py): the matching rows' items, whatever the catalogue's size
        where.append(Item.id.in_(select(literal_column("item_id", Integer)).select_from(table(search_index.TABLE))
                                 .where(text(f"{search_index.TABLE} MATCH :search_phrase"))))
    elif f.search.strip():
        # the file names as one set: a search that matches nothing then costs one pass over them, not a probe per item
        where.append(or_(_matches(Item.accession_number, dialect), _matches(Item.title, dialect),
                         Item.id.in_(select(SourceFile.item_id).where(_matches(SourceFile.file_name, dialect)))))
    return where


def _matches(column: Any, dialect: str) -> ColumnElement[bool]:
    """``column`` contains the bound search text, case-insensitively. SQLite's LIKE already ignores (ASCII) case,
    as its lower() only folds ASCII: plain LIKE is the same test without a lower() per row."""
    pattern = bindparam("search", type_=String)
    return column.like(pattern, escape="/") if dialect.startswith("sqlite") else column.ilike(pattern, escape="/")


# -- sort keys and cursors ---------------------------------------------------------------------------


def sort_columns(sort: str) -> tuple[list[Any], bool]:
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


def bound_values(values: Sequence[Any] | None, user_id: int, f: QueueFilter | None = None) -> dict[str, Any]:
    bound: dict[str, Any] = {"user_id": user_id}
    if f is not None:
        if f.search.strip():
            bound.update(search=search_pattern(f.search), search_phrase=search_index.phrase(f.search))
        if f.run_id is not None:
            bound["run_id"] = f.run_id
        if f.grade is not None:
            bound["grade"] = f.grade
    return {**bound, **{f"key{i}": v for i, v in enumerate(values or ())}}


def statement_shape(f: QueueFilter) -> QueueFilter:
    """The filter as a statement's cache key. The search text, run and grade are bound, not built in (a new run
    would otherwise build and cache a new statement: 15-20 ms, once per run and shape); whether the search is
    long enough for the trigram index decides the statement."""
    search = "" if not f.search.strip() else INDEXED_SEARCH if search_index.uses_index(f.search) else "?"
    return replace(f, search=search, run_id=None if f.run_id is None else 1, grade=None if f.grade is None else GRADES[0])


@lru_cache(maxsize=256)
def page_statement(f: QueueFilter, sort: str, forward: bool, anchored: bool, limit: int, dialect: str) -> Select[Any]:
    columns, descending = sort_columns(sort)
    where = _conditions(f, USER, dialect)
    if anchored:
        where.append(_beyond(columns, _key_params(columns), forward=forward, descending=descending))
    return (select(*_row_columns(USER), *columns[:-1]).where(*where)
            .order_by(*_ordering(columns, forward=forward, descending=descending)).limit(limit + 1))


@lru_cache(maxsize=256)
def first_beyond_statement(f: QueueFilter, sort: str, forward: bool, dialect: str, *, next_to_review: bool = False) -> Select[Any]:
    """The first item after (``forward``) or before a sort key, in the filtered order; ``next_to_review``: only
    items the user can still decide, other than the one the key is of (``key_item``)."""
    columns, descending = sort_columns(sort)
    where = [*_conditions(f, USER, dialect), _beyond(columns, _key_params(columns), forward=forward, descending=descending)]
    if next_to_review:
        where += [Item.status == AWAITING, ~_approved_by(USER)]
    return select(Item.id).where(*where).order_by(*_ordering(columns, forward=forward, descending=descending)).limit(1)


@lru_cache(maxsize=64)
def first_to_review_statement(f: QueueFilter, sort: str, dialect: str) -> Select[Any]:
    columns, descending = sort_columns(sort)
    where = [*_conditions(f, USER, dialect), Item.status == AWAITING, ~_approved_by(USER), Item.id != bindparam("key_item")]
    return select(Item.id).where(*where).order_by(*_ordering(columns, forward=True, descending=descending)).limit(1)


@lru_cache(maxsize=256)
def count_statement(f: QueueFilter, count_limit: int | None, dialect: str) -> Select[Any]:
    if count_limit is None:
        return select(func.count()).select_from(Item).where(*_conditions(f, USER, dialect))
    return select(func.count()).select_from(select(Item.id).where(*_conditions(f, USER, dialect)).limit(count_limit + 1).subquery())
