"""A reviewer using the review app over real HTTP, as a browser without JavaScript would.

Shared by the end-to-end tests (imported from tests/, which pytest puts on sys.path).
"""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ITEM_LINK = re.compile(r'href="/items/(\d+)"')


class ReviewerBrowser:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)

    def csrf(self, path: str) -> str:
        page = self.http.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:500])
        match = CSRF.search(page.text)
        assert match, f"no CSRF field on {path}"
        return match.group(1)

    def log_in(self, username: str, password: str) -> None:
        token = self.csrf("/login")
        r = self.http.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": "/"})
        assert r.status_code == 303, (r.status_code, r.text[:500])

    def queue(self) -> list[int]:
        page = self.http.get("/")
        assert page.status_code == 200
        return sorted({int(i) for i in ITEM_LINK.findall(page.text)})

    def decide(self, item_id: int, decision: str, reason: str = "") -> httpx.Response:
        """Approve in one step; reject and send back through their confirmation page, as a reviewer does."""
        token = self.csrf(f"/items/{item_id}")
        data = {"decision": decision, "reason": reason, "csrf_token": token}
        r = self.http.post(f"/items/{item_id}/decision", data=data)
        if decision in ("reject", "send_back") and r.status_code == 200:  # the confirmation page: press Confirm
            assert 'name="confirm" value="yes"' in r.text, r.text[:500]
            r = self.http.post(f"/items/{item_id}/decision", data={**data, "confirm": "yes"})
        return r

    def close(self) -> None:
        self.http.close()
