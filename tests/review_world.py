"""The review app's test world (fixtures re-exported by tests/review_ui/conftest.py): a real migrated SQLite catalogue, a real LocalStore with small JPEGs,
items built through the catalogue's own ingest methods, and TestClients of the real app."""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from catalogue_template import copy_migrated
from fastapi import FastAPI
from PIL import Image as PILImage

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from relicflow.catalogue import Catalogue
from relicflow.catalogue.ingested import IngestedImage, WarningNote
from relicflow.passwords import hash_password
from relicflow.settings import Settings
from relicflow.storage import LocalStore, derivative_key, original_key
from review_ui import create_review_app

PASSWORD = "correct-horse-battery"
USERS = {"alice": "reviewer", "bob": "reviewer", "sara": "senior_reviewer", "dora": "digitiser", "adam": "admin",
         "otto": "auditor"}


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    """A small real JPEG: a two-tone picture, so different colours give different bytes and hashes."""
    img = PILImage.new("RGB", size, colour)
    img.paste(tuple(255 - c for c in colour), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def form_token(html: str, name: str = "csrf_token") -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1)


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose; hash once for every test user


@dataclass
class ReviewWorld:
    """A catalogue, a store and users, with helpers to add items the way ingest does."""

    settings: Settings
    catalogue: Catalogue
    store: LocalStore
    user_ids: dict[str, int]
    batch_calls: list[int] = field(default_factory=list)
    _colour: int = 0

    def new_run(self) -> int:
        return self.catalogue.start_ingest_run(inbox=str(self.settings.inbox), sheet=None, flow_run_id=None)

    def add_item(self, run_id: int | None, *, title: str = "青花缠枝莲纹梅瓶", accession: str | None = None,
                 grade: str | None = "三级", required_approvals: int = 1, warnings: list[WarningNote] | None = None,
                 duplicate_of: list[int] | None = None, file_name: str | None = None, sheet_row: bool = True) -> int:
        """``sheet_row=False``: the scan matched no accession-sheet row (no number, no name, no record)."""
        self._colour += 1
        colour = ((self._colour * 67) % 256, (self._colour * 139) % 256, (self._colour * 29) % 256)
        original = jpeg(colour, (320, 240))
        sha = hashlib.sha256(original).hexdigest()
        file_name = file_name or f"scan_{self._colour:04d}.jpg"
        accession = accession or f"MB-2024-{self._colour:04d}"
        item_id, created = self.catalogue.register_received(sha256=sha, file_name=file_name, inbox_path=f"inbox/{file_name}",
                                                            size_bytes=len(original), ingest_run_id=run_id)
        assert created
        self.store.put_bytes(original_key(sha), original, content_type="image/jpeg")
        access = self.store.put_bytes(derivative_key(sha, "access.jpg"), jpeg(colour, (240, 180)), content_type="image/jpeg")
        thumb = self.store.put_bytes(derivative_key(sha, "thumbnail.jpg"), jpeg(colour, (80, 60)), content_type="image/jpeg")
        fields = {"title": title, "period": "明永乐", "material": "瓷", "grade": grade or "", "height_cm": "34.5",
                  "category": "瓷器", "acquisition": "旧藏"}
        result = IngestedImage(
            sha256=sha, size_bytes=len(original), format="JPEG", width=320, height=240, mode="RGB", bits_per_sample=8,
            original_key=original_key(sha), access_key=access.key, thumbnail_key=thumb.key,
            derivation=[{"op": "resize", "long_side": 240}], hashes={"phash": f"{self._colour:016x}"},
            technical={"format": "JPEG", "width": 320, "height": 240, "dpi": [300, 300]},
            warnings=warnings or [], accession_number=accession if sheet_row else None, accession_number_source="sheet",
            title=title if sheet_row else None, grade=grade if sheet_row else None, sheet_fields=fields if sheet_row else None,
            required_approvals=required_approvals,
        )
        others = duplicate_of or []
        self.catalogue.record_ingested(item_id, result, match=lambda _query, candidates: [
            (other, 4) for other, _ in candidates if other in others])
        return item_id

    def add_quarantined(self, run_id: int | None, *, file_name: str = "broken.tif") -> int:
        data = b"not really a tiff" + file_name.encode()
        item_id, _ = self.catalogue.register_received(sha256=hashlib.sha256(data).hexdigest(), file_name=file_name,
                                                      inbox_path=f"inbox/{file_name}", size_bytes=len(data), ingest_run_id=run_id)
        self.catalogue.quarantine(item_id, code="truncated_image", message_en="The file ends early; copy it from the camera again.",
                                  message_zh="文件不完整，请从相机重新拷贝。")
        return item_id

    def app(self, **kwargs: object) -> FastAPI:
        kwargs.setdefault("on_batch_decided", self.batch_calls.append)
        return create_review_app(self.settings, self.catalogue, self.store, **kwargs)  # type: ignore[arg-type]

    def client(self, app: FastAPI | None = None, **kwargs: object) -> TestClient:
        return TestClient(app or self.app(), follow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def login(self, client: TestClient, username: str, password: str = PASSWORD) -> None:
        page = client.get("/login")
        r = client.post("/login", data={"username": username, "password": password, "csrf_token": form_token(page.text)})
        assert r.status_code == 303, r.text


@pytest.fixture
def world(tmp_path: Path, settings: Settings, password_hash: str, migrated_template: Path) -> Iterator[ReviewWorld]:
    """``settings`` comes from tests/conftest.py (fresh data dir, no RELICFLOW_* leaking in)."""
    copy_migrated(migrated_template, tmp_path / "catalogue.sqlite3")
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'catalogue.sqlite3'}")
    catalogue.migrate()
    user_ids = {name: catalogue.add_user(name, password_hash, role, display_name=name.title()) for name, role in USERS.items()}
    yield ReviewWorld(settings=settings, catalogue=catalogue, store=LocalStore(tmp_path / "objects"), user_ids=user_ids)
    catalogue.dispose()


@pytest.fixture
def signed_in(world: ReviewWorld) -> Callable[[str], TestClient]:
    """A TestClient of a fresh app, signed in as the given user."""

    def make(username: str) -> TestClient:
        client = world.client()
        world.login(client, username)
        return client

    return make
