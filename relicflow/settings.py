"""All of relicflow's settings in one place.

Read from ``RELICFLOW_*`` environment variables, then an optional TOML file (``relicflow.toml`` in the
working directory, or the file named by ``RELICFLOW_CONFIG``). Nothing reads settings at import time:
build a :class:`Settings` with :func:`load_settings` and pass it down.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any, Literal

from relicflow.local_time import time_zone
from tasks.object_views import DEFAULT_VIEW_LABELS

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


# The sandbox issuer's well-known credentials: fine on this machine, never towards a real issuer.
SANDBOX_API_KEY = "sandbox-key"
SANDBOX_SECRET = "sandbox-secret-change-me"
SANDBOX_CHAIN = "sandbox-chain"


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_credentials_problem(issuer_url: str, api_key: str, secret: str) -> str | None:
    """Why these issuer settings must not be used, or None: the sandbox's credentials towards another host."""
    if not issuer_url or is_loopback_url(issuer_url):
        return None
    defaults = [name for name, value, default in (("RELICFLOW_ISSUER_API_KEY", api_key, SANDBOX_API_KEY),
                                                  ("RELICFLOW_ISSUER_SECRET", secret, SANDBOX_SECRET)) if value == default]
    if not defaults:
        return None
    return (f"RELICFLOW_ISSUER_URL is {issuer_url}, a real issuer, but {' and '.join(defaults)} still hold the sandbox "
            f"issuer's default value; set the API key and signing secret the issuer gave you / "
            f"发行方地址不是本机沙盒，但 {'、'.join(defaults)} 仍是沙盒的默认值，请填写发行方分配的 API 密钥与签名密钥")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELICFLOW_", extra="forbid", toml_file="relicflow.toml")

    data_dir: Path = Field(default=Path("./relicflow-data"), description="Everything relicflow writes by default lives here.")
    database_url: str = Field(default="", description="SQLAlchemy URL of the catalogue; default: SQLite file in the data dir.")
    storage_url: str = Field(default="", description="file:///path or s3://bucket/prefix; default: objects/ in the data dir.")
    s3_endpoint_url: str | None = Field(default=None, description="For S3-compatible stores (MinIO, Ceph, moto).")
    s3_region: str = "us-east-1"
    s3_max_attempts: int = Field(default=5, ge=1, description="Tries per S3 request, the first included (SlowDown, 5xx, timeouts, dropped connections).")
    s3_retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard", description="botocore retry mode; 'adaptive' also rate-limits the client after throttling (single-tenant use only).")
    s3_connect_timeout_s: float = Field(default=10.0, gt=0, description="Longest wait to connect to the S3 endpoint, per attempt.")
    s3_read_timeout_s: float = Field(default=60.0, gt=0, description="Longest wait for bytes of an S3 answer, per attempt; slower is retried.")
    inbox: Path = Field(default=Path(""), description="Where the studio drops scans; default: inbox/ in the data dir.")
    issuer_url: str = Field(default="", description="Issuer base URL; empty means the bundled sandbox issuer.")
    issuer_api_key: SecretStr = Field(default=SecretStr(SANDBOX_API_KEY), description="API key the issuer assigned; the default is the sandbox's.")
    issuer_secret: SecretStr = Field(default=SecretStr(SANDBOX_SECRET), description="HMAC-SHA256 signing secret shared with the issuer.")
    issuer_chain: str = Field(default=SANDBOX_CHAIN, min_length=1, description="The chain the issuer mints on; a receipt for another chain is refused.")
    audit_key: SecretStr | None = Field(default=None, description="Key (16+ characters) that seals the audit chain; keep it out of the catalogue's reach and backups. Unset: the key file below.")
    audit_key_file: Path = Field(default=Path(""), description="File holding the audit key (hex); default: secrets/audit-key in the data dir, created with the first entry.")
    audit_verify_interval_s: float = Field(default=3600.0, gt=0, description="How often `serve` and the review app re-verify the review record.")
    issuer_timeout_s: float = 10.0
    issuer_max_attempts: int = 5
    sandbox_issuer_port: int = 8765
    review_port: int = 8000
    review_host: str = "127.0.0.1"
    review_workers: int = Field(default=1, ge=1, le=32, description="Processes serving the review app. Each uses at most one core (Python's GIL): give a busy review app one per core; bench/review_queue.py measures the difference.")
    review_page_threads: int = Field(default=4, ge=1, le=64, description="Pages one review process works on at once; more threads than this only add switching (review_ui/threads.py).")
    review_image_threads: int = Field(default=16, ge=1, le=256, description="Photographs one review process reads from the object store at once, apart from pages.")
    prefect_port: int = 4200
    ingest_interval_s: int = Field(default=300, description="How often the scheduled ingest flow scans the inbox.")
    mint_interval_s: int = Field(default=600, description="How often the scheduled mint flow collects approvals.")
    fixity_interval_s: int = Field(default=86_400, gt=0, description="How often the scheduled fixity flow re-checks stored objects.")
    fixity_batch_size: int = Field(default=2000, gt=0, description="Objects re-hashed per fixity run, least recently checked first.")
    fixity_workers: int = Field(default=4, ge=1, le=64, description="Objects a fixity run reads at the same time.")
    stale_temporary_age_s: int = Field(default=86_400, gt=0, description="Temporary files of interrupted writes older than this are removed (sooner when their writer is known to have ended).")
    gate_reconcile_interval_s: float = Field(default=20.0, description="How often `serve` resumes review gates whose batch is fully decided.")
    inbox_settle_s: float = Field(default=10.0, description="Scheduled runs skip files modified this recently (still being copied).")
    bulk_approve_max: int = Field(default=200, ge=1, le=5000, description="Most items one bulk approval may list on its confirmation page.")
    two_reviewer_grades: list[str] = Field(default=["一级"], description="Relic grades (级别) whose approval needs two distinct reviewers.")
    view_labels: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_VIEW_LABELS.items()},
        description="View codes and the labels (in file names after the accession number, or in the sheet's 视图 column) "
                    "that name them, e.g. {back = [\"背面\", \"反面\", \"verso\"]}; replaces the default table when set.")
    near_duplicate_distance: int = Field(default=10, description="pHash Hamming distance at or below which two images are near duplicates.")
    max_image_pixels: int = Field(default=200_000_000, description="Decompression-bomb guard: larger images are quarantined.")
    access_long_side: int = 2048
    thumbnail_long_side: int = 400
    decode_processes: int = Field(default=0, description="Worker processes for the pixel work of ingest; 0: one per CPU core, at most 4.")
    decode_timeout_s: float = Field(default=600.0, description="A scan whose decoding and pixel work takes longer is quarantined as decoder_timeout.")
    decode_memory_limit_mb: int = Field(default=6144, description="Address-space limit of each decoding worker; a scan needing more is quarantined.")
    ingest_max_attempts: int = Field(default=3, description="Ingest attempts for an item that fails with an internal error before it waits for an administrator.")
    ingest_heartbeat_s: float = Field(default=10.0, description="How often a running ingest run says it is alive; silent for 6x this, it counts as interrupted.")
    login_max_failures: int = Field(default=8, description="Failed sign-ins per account (or per address, x3) before sign-in pauses.")
    login_failure_window_s: int = Field(default=900, description="The window those failures are counted in, and how long the pause lasts.")
    session_idle_timeout_s: int = Field(default=1800, gt=0, description="A review-app session with no request for this long ends (sign in again).")
    session_max_age_s: int = Field(default=12 * 3600, gt=0, description="A review-app session ends this long after sign-in, however busy.")
    trusted_proxies: list[str] = Field(
        default=[], description="IP addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
                                "the review app believes; empty: the connecting address is the client, those headers are ignored.")
    review_counts_max_age_s: float = Field(default=10.0, ge=0, le=300, description="How old the review queue's filter counts may be: they are recounted at most this often, not on every page.")
    review_page_size: int = Field(default=50, ge=5, le=500, description="Items per page of the review queue; pages cost the same however long the queue is.")
    locale: str = Field(default="zh-CN", description="zh-CN or en: language of the CLI and the review app.")
    time_zone: str = Field(default="Asia/Shanghai", description="Time zone (tz database name) times are shown in, with the zone; the catalogue keeps UTC.")
    mint_recipient: str = "museum-treasury"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("RELICFLOW_CONFIG", "relicflow.toml")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        """Each entry as a canonical network ("10.0.0.5" -> "10.0.0.5/32"), so the proxy-header check can
        never quietly treat a typo as a name that matches nothing; "*" is refused (anyone could forge)."""
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from exc
        return networks

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'catalogue.sqlite3'}"
        if not self.storage_url:
            self.storage_url = (self.data_dir / "objects").as_uri()
        if not str(self.inbox) or str(self.inbox) == ".":
            self.inbox = self.data_dir / "inbox"
        self.inbox = self.inbox.expanduser().resolve()
        if not str(self.audit_key_file) or str(self.audit_key_file) == ".":
            self.audit_key_file = self.data_dir / "secrets" / "audit-key"
        self.audit_key_file = self.audit_key_file.expanduser().resolve()
        if self.audit_key is not None and len(self.audit_key.get_secret_value().encode("utf-8")) < 16:
            raise ValueError("audit_key must be at least 16 characters long")
        time_zone(self.time_zone)  # a misspelt zone is refused at start, not at the first page that shows a time
        if self.locale not in ("zh-CN", "en"):
            raise ValueError("locale must be 'zh-CN' or 'en'")
        problem = default_credentials_problem(self.issuer_url, self.issuer_api_key.get_secret_value(),
                                              self.issuer_secret.get_secret_value())
        if problem:
            raise ValueError(problem)
        return self

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def sandbox_ledger_path(self) -> Path:
        return self.data_dir / "sandbox-issuer" / "ledger.sqlite3"

    @property
    def effective_issuer_url(self) -> str:
        return self.issuer_url or f"http://127.0.0.1:{self.sandbox_issuer_port}"

    @property
    def review_url(self) -> str:
        return f"http://{self.review_host}:{self.review_port}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and TOML file; keyword overrides win (used by the CLI and tests)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
