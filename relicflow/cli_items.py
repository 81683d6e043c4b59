"""`relicflow items`: status names in either language, and notes a person can read without the manual.

Status names come from the review app's ``web.status.*`` texts (relicflow/locale catalogues), so the CLI accepts
exactly the words staff see on the pages. Warnings and near-duplicate notes are said in words in the
chosen language; `--json` keeps the codes and numbers, with times in ISO 8601 UTC.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from relicflow.catalogue.models import ItemStatus
from relicflow.errors import BadCommandInput
from relicflow.i18n import SUPPORTED_LOCALES, t
from relicflow.local_time import format_local
from relicflow.settings import Settings
from schemas.catalogue import DuplicateCandidateOut, ItemRecord, Warning

NOTE_WIDTH = 70  # display cells per note in the table (a Chinese character takes two)
TOKEN_WIDTH = 24
# pHash/dHash Hamming distance (of 64 bits) -> how alike two images are, said in words
_LIKENESS = ((0, "same"), (4, "resaved"))


def _name_key(name: str) -> str:
    return "_".join(name.replace("\u3000", " ").replace("-", " ").replace("_", " ").lower().split())


def status_names() -> dict[str, ItemStatus]:
    """Every accepted spelling -> status: the stored value and its name in each language of the app."""
    names: dict[str, ItemStatus] = {}
    for status in ItemStatus:
        names[_name_key(status.value)] = status
        for locale in SUPPORTED_LOCALES:
            names[_name_key(t(f"web.status.{status.value}", locale))] = status
    return names


def status_from_name(name: str) -> ItemStatus:
    """The status ``name`` means (awaiting_review, "awaiting review", 待审核 …); a bilingual error listing them all."""
    status = status_names().get(_name_key(name))
    if status is not None:
        return status
    listed_en = ", ".join(f"{s.value} ({t(f'web.status.{s.value}', 'zh-CN')})" for s in ItemStatus)
    listed_zh = "、".join(f"{t(f'web.status.{s.value}', 'zh-CN')}（{s.value}）" for s in ItemStatus)
    raise BadCommandInput(
        "unknown_status",
        f"--status {name!r} is not an item status. Use one of: {listed_en}.",
        f"--status “{name}” 不是藏品状态。可用的状态：{listed_zh}。",
    )


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` display cells with an ellipsis; whole if it fits. Counts CJK as two cells."""
    text = " ".join(text.split())
    if cell_len(text) <= width:
        return text
    cut = []
    used = 0
    for char in text:
        used += cell_len(char)
        if used > width - 1:
            break
        cut.append(char)
    return "".join(cut).rstrip() + "…"


def duplicate_note(candidate: DuplicateCandidateOut, locale: str) -> str:
    """'near duplicate of #2 (distance 0: the same photograph)'."""
    likeness = next((name for limit, name in _LIKENESS if candidate.distance <= limit), "similar")
    return t("cli.items.duplicate", locale, item=candidate.item_id, distance=candidate.distance,
             likeness=t(f"cli.items.likeness.{likeness}", locale))


def warning_note(warning: Warning, locale: str, width: int = NOTE_WIDTH) -> str:
    """The warning's message in ``locale``, shortened, with its code kept whole for searching."""
    message = warning.message_zh if locale == "zh-CN" else warning.message_en
    return t("cli.items.warning", locale, code=warning.code, message=shorten(message, width - cell_len(warning.code) - 4))


def item_notes(record: ItemRecord, settings: Settings) -> list[str]:
    """What a person should know about the item, one short line each, in the chosen language."""
    locale = settings.locale
    zh = locale == "zh-CN"
    # what to do (quarantine, a reviewer's note, a mint hold) is shown whole; warnings and errors are cut short
    notes = [record.quarantine.message_zh if zh else record.quarantine.message_en] if record.quarantine else []
    if record.status in ("rejected", "sent_back"):
        for d in record.decisions[-1:]:
            if d.decision in ("reject", "send_back"):
                # the reviewer's note is what staff act on: shown whole
                notes.append(t("cli.items.decided", locale, reviewer=d.reviewer, reason=" ".join((d.reason or "").split()),
                               when=format_local(d.decided_at, settings.time_zone)))
    if record.failure is not None:
        notes.append(shorten(t("cli.items.failed", locale, attempts=record.failure.attempts, max=settings.ingest_max_attempts,
                               error=record.failure.error.splitlines()[0] if record.failure.error else ""), 2 * NOTE_WIDTH))
    if record.superseded_by is not None:
        notes.append(t("cli.items.superseded", locale, item=record.superseded_by))
    if record.mint_hold is not None:
        notes.append(t("cli.items.held", locale, code=record.mint_hold.code,
                       message=record.mint_hold.message_zh if zh else record.mint_hold.message_en))
    notes += [warning_note(w, locale) for w in record.warnings]
    notes += [duplicate_note(d, locale) for d in record.duplicate_candidates]
    return notes


def token_cell(record: ItemRecord) -> str:
    if record.token is None:
        return ""
    m = record.token
    token = shorten(m.token_id, TOKEN_WIDTH) if m.token_id else "…"
    return f"{token}\n{m.chain or ''} · {m.batch_ref or ''}".strip()


def print_items_table(console: Console, records: Sequence[ItemRecord], settings: Settings) -> None:
    """One row per item; a token column only when some item has been batched or minted."""
    locale = settings.locale
    with_tokens = any(r.token is not None for r in records)
    table = Table()
    columns = ["id", "status", "accession", "files", *(["token"] if with_tokens else []), "updated", "notes"]
    for col in columns:
        table.add_column(t(f"cli.items.col.{col}", locale), overflow="fold" if col in ("files", "token") else "ellipsis")
    for r in records:
        accession = (r.accession_number or "-") + ("?" if r.accession_number_source == "file_name" else "")
        cells = [str(r.id), t(f"web.status.{r.status}", locale), escape(accession), escape(", ".join(r.original_file_names))]
        if with_tokens:
            cells.append(escape(token_cell(r)))
        cells.append(format_local(r.updated_at, settings.time_zone))
        cells.append(escape("\n".join(item_notes(r, settings))))
        table.add_row(*cells)
    console.print(table)


def items_json(records: Sequence[ItemRecord]) -> str:
    """The full records (codes, distances, ISO 8601 UTC times), as `relicflow items --json` prints them."""
    return json.dumps([r.model_dump(mode="json") for r in records], ensure_ascii=False, indent=2) + "\n"
