"""One installation, one catalogue, one Prefect server.

Several installations (data dirs) may live on one machine. Three things keep them apart:

- **the catalogue's identity**: a UUID in the catalogue database (migration 0010), carried by every flow
  run as its ``catalogue_id`` parameter and a ``catalogue:<uuid>`` tag; a run that opens a catalogue
  with another identity refuses to act (:func:`check_catalogue`);
- **the recorded server**: `relicflow serve` writes the Prefect server it started to
  ``<data_dir>/prefect/server.json`` and claims that server for its catalogue (a Prefect variable);
  one-off commands use it only while it is alive and still claimed for this catalogue
  (:func:`own_server`), else a temporary server, never whatever answers on the port by chance;
- **the data dir check**: commands other than `relicflow init` refuse to run where no catalogue is
  (:func:`require_installation`) instead of creating an empty one.

Nothing here imports Prefect: the CLI must set Prefect's environment before Prefect is imported.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from relicflow.errors import CatalogueMismatch, NotAnInstallation
from relicflow.settings import Settings

log = logging.getLogger("relicflow.installation")

SERVER_RECORD = "server.json"
CLAIM_VARIABLE = "relicflow_catalogue"  # Prefect variable naming the catalogue a server belongs to


def catalogue_tag(identity: str) -> str:
    """The Prefect tag every flow run of this catalogue carries (filterable in the UI and the API)."""
    return f"catalogue:{identity}"


# -- the data dir -----------------------------------------------------------------------------------


def is_initialised(settings: Settings) -> bool:
    """True when this data dir's catalogue exists (created by `relicflow init`); never creates anything."""
    if not settings.data_dir.is_dir():
        return False
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return bool(url.database) and url.database != ":memory:" and Path(url.database).is_file()
    engine = create_engine(url)  # another database (PostgreSQL): initialised once migrations ran there
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table("alembic_version")
    except Exception:  # unreachable or refused: reported as "no catalogue here", with the reason logged
        log.exception("could not look for the catalogue at %s", url.render_as_string(hide_password=True))
        return False
    finally:
        engine.dispose()


def require_installation(settings: Settings) -> None:
    """Refuse (NotAnInstallation) unless the data dir holds a catalogue: a command run from the wrong
    folder must not quietly create a new, empty installation there."""
    if is_initialised(settings):
        return
    where = str(settings.data_dir)
    raise NotAnInstallation(
        f"No relicflow installation in {where} (no catalogue there). Nothing was created. cd to the folder of your "
        f"installation, pass --data-dir /path/to/data, set RELICFLOW_DATA_DIR, or run `relicflow init` to create a new one here.",
        f"{where} 不是 relicflow 的数据目录（其中没有目录数据库），未创建任何内容。请 cd 到安装所在的文件夹，或使用 --data-dir 指定数据目录，"
        f"或设置环境变量 RELICFLOW_DATA_DIR；如要在此新建，请运行 relicflow init。",
        data_dir=where,
    )


# -- the catalogue's identity ---------------------------------------------------------------------


def check_catalogue(catalogue: Any, expected: str | None, settings: Settings) -> str:
    """The identity of ``catalogue``; CatalogueMismatch when the run was started for another one.

    ``expected`` None (a run started before identities existed, or a direct call) accepts any catalogue.
    """
    found = catalogue.identity()
    if expected and expected != found:
        where = f"data dir {settings.data_dir}, database {make_url(settings.database_url).render_as_string(hide_password=True)}"
        raise CatalogueMismatch(
            f"This run was started for catalogue {expected}, but the catalogue it opened is {found} ({where}). "
            f"It refuses to act on it and changed nothing: it reached the wrong installation (another installation's "
            f"Prefect server or deployment). Run the command again from the installation of catalogue {expected}.",
            f"本次运行属于目录 {expected}，但打开的是目录 {found}（数据目录 {settings.data_dir}）。为免误操作，本次运行拒绝执行，"
            f"未作任何更改：它被发到了另一个安装（另一个安装的 Prefect 服务器或部署）。请在目录 {expected} 所在的安装中重新运行。",
            expected=expected, found=found,
        )
    return found


def catalogue_identity(settings: Settings) -> str:
    """The identity of this data dir's catalogue (migrating it first, so an older catalogue gets one)."""
    from relicflow.catalogue import Catalogue

    catalogue = Catalogue.from_settings(settings)
    try:
        catalogue.migrate()
        return catalogue.identity()
    finally:
        catalogue.dispose()


# -- the Prefect server `relicflow serve` started ---------------------------------------------------


@dataclass(frozen=True)
class ServerRecord:
    """What `relicflow serve` wrote about the Prefect server it runs for this data dir."""

    url: str  # the API URL, e.g. http://127.0.0.1:4200/api
    pid: int
    catalogue: str
    data_dir: str
    started_at: str


def server_record_path(settings: Settings) -> Path:
    return settings.prefect_home / SERVER_RECORD


def record_server(settings: Settings, *, url: str, pid: int, identity: str) -> ServerRecord:
    """Write the record (atomically: a reader never sees half a file)."""
    record = ServerRecord(url=url, pid=pid, catalogue=identity, data_dir=str(settings.data_dir),
                          started_at=datetime.now(timezone.utc).isoformat())
    path = server_record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return record


def forget_server(settings: Settings, pid: int | None = None) -> None:
    """Remove the record when `serve` stops (only if it still names ``pid``, when given)."""
    path = server_record_path(settings)
    record = read_server_record(settings)
    if record is not None and pid is not None and record.pid != pid:
        return
    path.unlink(missing_ok=True)


def read_server_record(settings: Settings) -> ServerRecord | None:
    path = server_record_path(settings)
    try:
        return ServerRecord(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        log.warning("ignoring an unreadable Prefect server record %s", path, exc_info=True)
        return None


def claim_server(url: str, identity: str, *, timeout_s: float = 10.0) -> None:
    """Mark the Prefect server at ``url`` as this catalogue's (a Prefect variable), so a one-off command
    can tell it from a stranger's server on the same port."""
    with httpx.Client(base_url=url.rstrip("/") + "/", timeout=timeout_s) as client:
        existing = client.get(f"variables/name/{CLAIM_VARIABLE}")
        if existing.status_code == 404:
            response = client.post("variables/", json={"name": CLAIM_VARIABLE, "value": identity})
        else:
            existing.raise_for_status()
            response = client.patch(f"variables/name/{CLAIM_VARIABLE}", json={"value": identity})
        response.raise_for_status()


def server_catalogue(url: str, *, timeout_s: float = 2.0) -> str | None:
    """The catalogue the Prefect server at ``url`` was claimed for; None if unclaimed or not answering."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/variables/name/{CLAIM_VARIABLE}", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    value = response.json().get("value")
    return value if isinstance(value, str) else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def own_server(settings: Settings, identity: str) -> str | None:
    """The API URL of the Prefect server `relicflow serve` runs for this catalogue, or None.

    None unless the record exists, names this catalogue, its process is alive and the server answering
    at its URL is claimed for this catalogue (a stopped serve whose port another installation took is
    not ours).
    """
    record = read_server_record(settings)
    if record is None:
        return None
    if record.catalogue != identity:
        log.warning("the Prefect server record in %s names catalogue %s, not this one (%s); ignored",
                    server_record_path(settings), record.catalogue, identity)
        return None
    if not _process_alive(record.pid):
        return None
    if server_catalogue(record.url) != identity:
        return None
    return record.url
