"""Migration 0007 on a catalogue that already has receipts: each learns the issuer batch it came from."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from relicflow.catalogue import Catalogue
from relicflow.catalogue.migrate import alembic_config, current_revision
from tests.relicflow.test_catalogue import HEAD


def test_existing_receipts_are_backfilled_with_their_own_batch(tmp_path: Path) -> None:
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        command.upgrade(alembic_config(catalogue.engine), "0005")
        with catalogue.engine.begin() as conn:
            conn.execute(text("INSERT INTO items (id, status, required_approvals, attempts, created_at, updated_at)"
                              " VALUES (1, 'minted', 1, 0, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
            conn.execute(text("INSERT INTO mint_batches (id, batch_ref, idempotency_key, status, request_body, request_sha256,"
                              " attempts, created_at) VALUES (1, 'rf-old', 'k', 'minted', '{}', 'h', 1, '2026-11-01 00:00:00')"))
            conn.execute(text("INSERT INTO mint_receipts (batch_id, item_id, token_id, tx_hash, chain, received_at)"
                              " VALUES (1, 1, 'sandbox-chain:00000001', '0x1', 'sandbox-chain', '2026-11-01 00:00:00')"))
        catalogue.migrate()
        assert current_revision(catalogue.engine) == HEAD
        [receipt] = catalogue.receipts()
        assert receipt.issuer_batch_ref == "rf-old"
        command.downgrade(alembic_config(catalogue.engine), "0005")  # and back, keeping the receipt
        with catalogue.engine.connect() as conn:
            assert conn.execute(text("SELECT token_id FROM mint_receipts")).scalar_one() == "sandbox-chain:00000001"
    finally:
        catalogue.dispose()
