"""`relicflow tokens`: a token made by the CLI works as its user, is listed without its secret, and stops
at once when revoked. Real SQLite catalogue in a temporary data dir; the CLI in-process (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_staff import catalogue_of, cli, cli_env, data_dir  # noqa: F401 - fixtures

from relicflow.catalogue.models import AuditEntry


def test_create_list_and_revoke_a_token(data_dir: Path) -> None:  # noqa: F811
    assert cli(data_dir, "init").exit_code == 0
    catalogue = catalogue_of(data_dir)
    catalogue.add_user("chen", "not-a-real-hash", "reviewer")
    made = cli(data_dir, "tokens", "create", "chen", "--label", "藏品管理系统", "--days", "30", "--actor", "wang")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("rfapi_") and "Created API token #1 for chen" in made.output
    principal = catalogue.api_principal(token)
    assert principal is not None and principal.username == "chen" and principal.role == "reviewer"

    listed = json.loads(cli(data_dir, "tokens", "list", "--json").stdout)
    assert [(k["id"], k["username"], k["label"], k["revoked_at"]) for k in listed] == [(1, "chen", "藏品管理系统", None)]
    assert listed[0]["expires_at"] is not None and token not in cli(data_dir, "tokens", "list").output

    assert cli(data_dir, "tokens", "revoke", "1", "--actor", "wang").exit_code == 0
    assert catalogue.api_principal(token) is None
    again = cli(data_dir, "tokens", "revoke", "1")
    assert again.exit_code == 1 and "No live API token #1" in again.output
    unknown = cli(data_dir, "tokens", "create", "nobody")
    assert unknown.exit_code == 1
    with catalogue.read_session() as s:
        actions = [(e.actor, e.action) for e in s.query(AuditEntry).filter(AuditEntry.action.like("api_token:%"))]
    assert actions == [("cli:wang", "api_token:create"), ("cli:wang", "api_token:revoke")]
    catalogue.dispose()
