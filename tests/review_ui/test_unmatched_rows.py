"""The quarantine page lists accession-sheet rows no scan matched (sheet, row, number, name, which run),
until the scan arrives; summaries written before the rows carried details still show their numbers."""

from __future__ import annotations

from collections.abc import Callable

from review_world import ReviewWorld
from starlette.testclient import TestClient

from relicflow.catalogue.unmatched_rows import still_unmatched_sheet_rows
from relicflow.i18n import t
from relicflow.local_time import format_local

SignedIn = Callable[[str], TestClient]


def finished_run(world: ReviewWorld, summary: dict[str, object], *, sheet: str | None = "登记表.csv") -> int:
    run = world.catalogue.start_ingest_run(inbox=str(world.settings.inbox), sheet=sheet, flow_run_id=None)
    world.catalogue.finish_ingest_run(run, {"skipped_files": [], "sheet_problems": [], **summary})
    return run


def test_unmatched_sheet_rows_are_listed_with_sheet_row_number_name_and_run(world: ReviewWorld, signed_in: SignedIn) -> None:
    old = finished_run(world, {"unmatched_sheet_rows": ["OLD-0007"]}, sheet="旧登记表.xlsx")  # before rows had details
    new = finished_run(world, {"unmatched_sheet_rows": ["2021.9.9", "2021.9.10"], "unmatched_sheet_row_details": [
        {"sheet": "登记表.csv", "row": 4, "accession_number": "2021.9.9", "title": "失踪的玉璧 <玉>"},
        {"sheet": "登记表.csv", "row": 5, "accession_number": "2021.9.10", "title": None},
    ]})
    page = signed_in("dora").get("/quarantine?lang=zh-CN").text
    assert t("web.unmatched.title", "zh-CN") in page
    table = page[page.index('class="table unmatched-rows"'):]
    table = table[:table.index("</table>")]
    when = format_local(world.catalogue.ingest_run(new).finished_at, "Asia/Shanghai")  # type: ignore[union-attr]
    assert ("<td class=\"files\">登记表.csv</td>\n      <td class=\"nowrap\">4</td>\n      <td>2021.9.9</td>\n"
            "      <td>失踪的玉璧 &lt;玉&gt;</td>") in table
    assert "<td>2021.9.10</td>\n      <td>—</td>" in table
    assert t("web.unmatched.run", "zh-CN", id=new, when=when) in table
    # an old summary: the number, the run's sheet, no row number
    assert "<td class=\"files\">旧登记表.xlsx</td>\n      <td class=\"nowrap\">—</td>\n      <td>OLD-0007</td>" in table
    assert t("web.unmatched.run", "zh-CN", id=old, when=format_local(
        world.catalogue.ingest_run(old).finished_at, "Asia/Shanghai")) in table  # type: ignore[union-attr]


def test_a_row_whose_scan_has_arrived_is_no_longer_listed(world: ReviewWorld, signed_in: SignedIn) -> None:
    finished_run(world, {"unmatched_sheet_rows": ["MB-0100", "MB-0101"], "unmatched_sheet_row_details": [
        {"sheet": "登记表.csv", "row": 2, "accession_number": "MB-0100", "title": "青铜鼎"},
        {"sheet": "登记表.csv", "row": 3, "accession_number": "MB-0101", "title": "玉璧"},
    ]})
    assert [r.accession_number for r in still_unmatched_sheet_rows(world.catalogue)] == ["MB-0100", "MB-0101"]
    world.add_item(world.new_run(), accession="MB-0100", title="青铜鼎")
    page = signed_in("dora").get("/quarantine").text
    assert "<td>MB-0101</td>" in page and "<td>MB-0100</td>" not in page
    world.add_item(world.new_run(), accession="MB-0101", title="玉璧")
    page = signed_in("dora").get("/quarantine?lang=en").text
    assert t("web.unmatched.empty", "en") in page and "table unmatched-rows" not in page


def test_a_row_reported_by_several_runs_is_listed_once_as_the_newest_saw_it(world: ReviewWorld) -> None:
    finished_run(world, {"unmatched_sheet_rows": ["MB-0200"]})
    newest = finished_run(world, {"unmatched_sheet_rows": ["MB-0200"], "unmatched_sheet_row_details": [
        {"sheet": "登记表-修订.csv", "row": 9, "accession_number": "MB-0200", "title": "瓷碗"}]})
    [row] = still_unmatched_sheet_rows(world.catalogue)
    assert (row.run_id, row.sheet, row.row, row.title) == (newest, "登记表-修订.csv", 9, "瓷碗")
