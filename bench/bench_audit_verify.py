"""What verifying the review record costs next to simply reading it, measured in one run on this machine.

Builds a SQLite catalogue of ``--items`` reviewed items (each: received, processed, awaiting review, one
approval, approved: five sealed entries plus rows) and ``--extra`` further entries (sign-ins, fixity),
then times the chain check (seals and links), the record check (every status, history and decision
against the chain) and a plain read of the same rows. Not a test: it prints ratios.
Run: ``.venv/bin/python bench/bench_audit_verify.py [--items 20000] [--extra 100000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from relicflow.catalogue import Catalogue, ItemStatus  # noqa: E402
from relicflow.catalogue.models import Image, Item, ReviewDecision, StatusTransition  # noqa: E402
from relicflow.catalogue.record_entries import decision_details, record_snapshot  # noqa: E402


def build(catalogue: Catalogue, items: int, extra: int) -> None:
    reviewer = catalogue.add_user("li", "x", "reviewer")
    with catalogue.session() as s:
        for n in range(items):
            item = Item(status=ItemStatus.received.value, title=f"器物 {n}", accession_number=f"A{n}", accession_number_source="sheet",
                        grade="三级", required_approvals=1)
            s.add(item)
            s.flush()
            first = StatusTransition(item_id=item.id, from_status=None, to_status="received", actor="ingest")
            s.add(first)
            s.flush()
            catalogue.audit(s, actor="ingest", action="status:received", item_id=item.id,
                            details={"transition_id": first.id, "from": None, "reason": ""})
            sha = f"{n:064x}"
            s.add(Image(item_id=item.id, sha256=sha, size_bytes=1, format="JPEG", width=1, height=1, mode="RGB",
                        bits_per_sample=8, original_key=f"originals/{sha}"))
            catalogue._transition(s, item, ItemStatus.processed, actor="ingest")
            catalogue._transition(s, item, ItemStatus.awaiting_review, actor="ingest",
                                  details={"record": record_snapshot(item, image_sha256=sha)})
            decision = ReviewDecision(item_id=item.id, image_sha256=sha, reviewer_id=reviewer, decision="approve", reason="")
            s.add(decision)
            s.flush()
            catalogue.audit(s, actor="li", action="review:approve", item_id=item.id, details=decision_details(decision))
            catalogue._transition(s, item, ItemStatus.approved, actor="li")
        for n in range(extra):
            catalogue.audit(s, actor="anonymous", action="auth:login-failed", details={"ip": "10.0.0.1", "n": n})


def seconds(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--extra", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = Catalogue(f"sqlite:///{Path(tmp) / 'catalogue.sqlite3'}")
        catalogue.migrate()
        build_s = seconds(lambda: build(catalogue, args.items, args.extra))
        entries = catalogue.audit_head().entries  # type: ignore[union-attr]

        def plain_read() -> None:
            with catalogue.engine.connect() as conn:
                for table in ("audit_log", "items", "status_transitions", "review_decisions"):
                    for _ in conn.execute(text(f"SELECT * FROM {table}")):
                        pass

        read_s = min(seconds(plain_read) for _ in range(2))
        chain_s = seconds(lambda: catalogue.audit_chain_break())
        record_s = seconds(lambda: catalogue.record_disagreements())
        assert catalogue.audit_chain_break() is None and catalogue.record_disagreements() == []
        catalogue.dispose()
    print(f"catalogue: {args.items} reviewed items, {entries} audit entries (built in {build_s:.1f} s)")
    print(f"plain read of audit log + items + transitions + decisions: {read_s:.2f} s")
    print(f"chain check (seals and links):  {chain_s:.2f} s = {chain_s / read_s:.1f}x plain read, "
          f"{1e6 * chain_s / entries:.0f} us per entry")
    print(f"record check (rows vs chain):   {record_s:.2f} s = {record_s / read_s:.1f}x plain read, "
          f"{1e6 * record_s / args.items:.0f} us per item")
    print(f"whole verification:             {chain_s + record_s:.2f} s = {(chain_s + record_s) / read_s:.1f}x plain read")


if __name__ == "__main__":
    main()
