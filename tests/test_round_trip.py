"""The send-back round trip over HTTP, as a museum lives it: ingest, a reviewer sends two objects back
(one for a blurred photograph, one for a missing sheet row), the studio rescans the one and corrects
the sheet for the other, the reviewer sees old and new side by side and approves, the mint sends
version 2 only. Real Prefect server, SQLite catalogue, review app on uvicorn, sandbox issuer."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reviewer_browser import ReviewerBrowser

from flows.ingest import ingest_flow
from flows.mint import mint_flow
from relicflow.background_server import serve_in_background
from relicflow.catalogue import Catalogue
from relicflow.i18n import t
from relicflow.issuer_client import IssuerClient
from relicflow.passwords import hash_password
from relicflow.sandbox_issuer import create_sandbox_app
from relicflow.settings import Settings
from relicflow.storage import open_store
from review_ui.app import create_review_app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
SEEN = re.compile(r'name="seen" value="([0-9a-f]+)"')
IMAGE_SRC = re.compile(r'src="/items/(\d+)/images/(\d+)/(thumbnail|access)"')


def photo(seed: int, path: Path, *, blur: bool = False) -> None:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)).resize((640, 480), Image.Resampling.BICUBIC)
    img.save(path, quality=60 if blur else 92)


def write_sheet(settings: Settings, rows: list[str]) -> None:
    (settings.inbox / "accession_sheet.csv").write_text("总登记号,藏品名称,类别,级别,文件名\n" + "\n".join(rows) + "\n", encoding="utf-8")


def seen_on(browser: ReviewerBrowser, item_id: int) -> str:
    match = SEEN.search(browser.http.get(f"/items/{item_id}").text)
    assert match, "the decision form carries what the page showed"
    return match.group(1)


def decide(browser: ReviewerBrowser, item_id: int, decision: str, reason: str = "", seen: str | None = None):  # noqa: ANN201
    data = {"decision": decision, "reason": reason, "csrf_token": browser.csrf(f"/items/{item_id}"),
            "seen": seen if seen is not None else seen_on(browser, item_id)}
    if decision in ("reject", "send_back"):  # as the confirmation page's Confirm button sends it
        data["confirm"] = "yes"
    return browser.http.post(f"/items/{item_id}/decision", data=data)


def test_send_back_rescan_and_corrected_sheet_come_back_and_only_version_two_is_minted(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True)
    photo(1, settings.inbox / "RT-1_正面.jpg")
    photo(2, settings.inbox / "RT-1_背面.jpg", blur=True)
    photo(3, settings.inbox / "DSC_0777.jpg")  # no sheet row yet
    write_sheet(settings, ["RT-1,鎏金铜佛像,金属器,三级,"])
    ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    catalogue.add_user("wang", hash_password("wang-pw-123456"), "reviewer")
    buddha = next(i for i in catalogue.items_awaiting_review() if i.accession_number == "RT-1")
    loose = next(i for i in catalogue.items_awaiting_review() if i.accession_number is None)
    old_back = next(i for i in buddha.images if i.view == "back")
    app = create_review_app(settings, catalogue, open_store(settings))

    with serve_in_background(app) as review_url:
        wang = ReviewerBrowser(review_url)
        wang.log_in("wang", "wang-pw-123456")
        page = wang.http.get(f"/items/{buddha.id}").text
        assert t("web.views.title", "zh-CN", count=2) in page and "正面" in page and "背面" in page
        stale = seen_on(wang, buddha.id)
        assert decide(wang, buddha.id, "send_back", "背面模糊，请重拍").status_code == 303
        assert decide(wang, loose.id, "send_back", "登记表缺少此件，请补录后重新提交").status_code == 303

        # the studio rescans the back under the same file name, and adds the missing row to the sheet
        photo(4, settings.inbox / "RT-1_背面.jpg")
        write_sheet(settings, ["RT-1,鎏金铜佛像,金属器,三级,", "2024.9.9,白釉瓷碗,瓷器,三级,DSC_0777.jpg"])
        summary = ingest_flow(settings=settings, start_gate=False)
        assert summary["resubmitted"] == [buddha.id] and summary["records_updated"] == [loose.id]
        assert sorted(wang.queue()) == sorted([buddha.id, loose.id])

        page = wang.http.get(f"/items/{buddha.id}").text
        assert "背面模糊，请重拍" in page  # the note the rescan answers
        assert t("web.views.what_changed", "zh-CN", old=1, new=2) in page
        shown = {(int(image), kind) for item, image, kind in IMAGE_SRC.findall(page) if int(item) == buddha.id}
        assert (old_back.id, "thumbnail") in shown  # version 1 beside version 2
        old = wang.http.get(f"/items/{buddha.id}/images/{old_back.id}/thumbnail")
        assert old.status_code == 200 and old.headers["content-type"] == "image/jpeg"
        # a form rendered before the rescan would approve what its reviewer never saw: refused, said why
        refused = decide(wang, buddha.id, "approve", seen=stale)
        assert refused.status_code == 400 and t("web.decision.object_changed", "zh-CN") in refused.text
        assert decide(wang, buddha.id, "approve").status_code == 303

        page = wang.http.get(f"/items/{loose.id}").text
        assert "登记表缺少此件" in page and t("web.views.record_changed", "zh-CN", version=2) in page and "白釉瓷碗" in page
        assert decide(wang, loose.id, "approve").status_code == 303

    ledger = settings.data_dir / "issuer-ledger.sqlite3"
    sandbox = create_sandbox_app(ledger_path=ledger, api_key=settings.issuer_api_key.get_secret_value(),
                                 secret=settings.issuer_secret.get_secret_value().encode())
    with serve_in_background(sandbox) as issuer_url:
        result = mint_flow(settings=settings.model_copy(update={"issuer_url": issuer_url}))
        assert result["minted"] == 2
        with IssuerClient(issuer_url, api_key=settings.issuer_api_key.get_secret_value(),
                          secret=settings.issuer_secret.get_secret_value().encode()) as client:
            tokens = {t.item_ref: t for t in client.list_tokens()}
    current = {i.view: i.sha256 for i in catalogue.item(buddha.id).images if i.replaced_by_image_id is None}
    received = tokens[f"relicflow:item:{buddha.id}"].content_sha256
    assert received == [current["front"], current["back"]] and old_back.sha256 not in received
    assert catalogue.record_disagreements() == []
