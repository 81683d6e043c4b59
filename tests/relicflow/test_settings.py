"""Settings: defaults derived from the data dir, RELICFLOW_* environment variables, a TOML file named by
RELICFLOW_CONFIG, and keyword overrides, in that order of increasing precedence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from relicflow.settings import Settings, load_settings


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No RELICFLOW_* from the developer's shell, no relicflow.toml from the working directory."""
    for key in list(os.environ):
        if key.startswith("RELICFLOW_"):
            monkeypatch.delenv(key)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a relicflow.toml here would be read when RELICFLOW_CONFIG is unset
    return tmp_path


def write_toml(path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path.write_text(body, encoding="utf-8")
    monkeypatch.setenv("RELICFLOW_CONFIG", str(path))
    return path


def test_defaults_derive_from_the_data_dir(clean_env: Path) -> None:
    data = clean_env / "data"
    s = load_settings(data_dir=data)
    assert s.data_dir == data.resolve()
    assert s.database_url == f"sqlite:///{data.resolve() / 'catalogue.sqlite3'}"
    assert s.storage_url == (data.resolve() / "objects").as_uri()
    assert s.inbox == data.resolve() / "inbox"
    assert s.prefect_home == data.resolve() / "prefect"
    assert s.locale == "zh-CN" and s.two_reviewer_grades == ["一级"]
    assert s.effective_issuer_url == f"http://127.0.0.1:{s.sandbox_issuer_port}"


def test_relative_data_dir_is_resolved_against_the_working_directory(clean_env: Path) -> None:
    s = Settings()
    assert s.data_dir == (clean_env / "work" / "relicflow-data").resolve()
    assert s.data_dir.is_absolute() and s.inbox == s.data_dir / "inbox"


def test_environment_overrides_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELICFLOW_DATA_DIR", str(clean_env / "from-env"))
    monkeypatch.setenv("RELICFLOW_DATABASE_URL", "postgresql+psycopg://relicflow@db/catalogue")
    monkeypatch.setenv("RELICFLOW_INBOX", str(clean_env / "studio-drop"))
    monkeypatch.setenv("RELICFLOW_LOCALE", "en")
    monkeypatch.setenv("RELICFLOW_REVIEW_PORT", "9001")
    monkeypatch.setenv("RELICFLOW_TWO_REVIEWER_GRADES", '["一级", "二级"]')
    monkeypatch.setenv("RELICFLOW_ISSUER_SECRET", "s3cret")
    s = load_settings()
    assert s.data_dir == (clean_env / "from-env").resolve()
    assert s.database_url == "postgresql+psycopg://relicflow@db/catalogue"
    assert s.storage_url == (clean_env / "from-env" / "objects").resolve().as_uri()  # still derived
    assert s.inbox == (clean_env / "studio-drop").resolve()
    assert s.locale == "en" and s.review_port == 9001 and s.review_url == "http://127.0.0.1:9001"
    assert s.two_reviewer_grades == ["一级", "二级"]
    assert s.issuer_secret.get_secret_value() == "s3cret" and "s3cret" not in repr(s)


def test_toml_file_named_by_relicflow_config_is_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / "conf").mkdir()
    write_toml(clean_env / "conf" / "site.toml", f'''
data_dir = "{(clean_env / 'toml-data').as_posix()}"
storage_url = "s3://relics/masters"
issuer_url = "https://issuer.example/api"
issuer_api_key = "museum-key-from-the-issuer"
issuer_secret = "museum-secret-from-the-issuer"
two_reviewer_grades = ["一级", "二级", "三级"]
near_duplicate_distance = 6
locale = "en"
''', monkeypatch)
    s = load_settings()
    assert s.data_dir == (clean_env / "toml-data").resolve()
    assert s.database_url == f"sqlite:///{(clean_env / 'toml-data').resolve() / 'catalogue.sqlite3'}"
    assert s.storage_url == "s3://relics/masters"
    assert s.effective_issuer_url == "https://issuer.example/api"
    assert s.two_reviewer_grades == ["一级", "二级", "三级"]
    assert s.near_duplicate_distance == 6 and s.locale == "en"


def test_relicflow_toml_in_the_working_directory_is_the_default_file(clean_env: Path) -> None:
    (clean_env / "work" / "relicflow.toml").write_text('review_port = 8123\n', encoding="utf-8")
    assert load_settings(data_dir=clean_env / "d").review_port == 8123


def test_a_missing_config_file_is_no_error(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELICFLOW_CONFIG", str(clean_env / "absent.toml"))
    assert load_settings(data_dir=clean_env / "d").review_port == 8000


def test_env_beats_toml_and_keywords_beat_both(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(clean_env / "relicflow.toml", 'review_port = 7001\nprefect_port = 7002\nmint_recipient = "toml"\nlocale = "en"\n',
               monkeypatch)
    monkeypatch.setenv("RELICFLOW_PREFECT_PORT", "7102")
    monkeypatch.setenv("RELICFLOW_MINT_RECIPIENT", "env")
    s = load_settings(data_dir=clean_env / "d", mint_recipient="keyword", locale=None)  # None: not an override
    assert s.review_port == 7001  # only in TOML
    assert s.prefect_port == 7102  # env beats TOML
    assert s.mint_recipient == "keyword"  # keyword beats env and TOML
    assert s.locale == "en"  # a None keyword leaves the TOML value


def test_unknown_key_in_toml_is_rejected_by_name(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(clean_env / "relicflow.toml", 'review_port = 8001\nreveiw_host = "0.0.0.0"\n', monkeypatch)
    with pytest.raises(ValidationError, match="reveiw_host") as info:
        load_settings(data_dir=clean_env / "d")
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def test_unknown_keyword_is_rejected(clean_env: Path) -> None:
    with pytest.raises(ValidationError, match="datadir"):
        load_settings(datadir=clean_env / "d")


@pytest.mark.parametrize("where", ["keyword", "env", "toml"])
@pytest.mark.parametrize("locale", ["fr", "zh", "EN", ""])
def test_invalid_locale_is_rejected(clean_env: Path, monkeypatch: pytest.MonkeyPatch, where: str, locale: str) -> None:
    kwargs: dict[str, object] = {"data_dir": clean_env / "d"}
    if where == "keyword":
        kwargs["locale"] = locale
    elif where == "env":
        monkeypatch.setenv("RELICFLOW_LOCALE", locale)
    else:
        write_toml(clean_env / "relicflow.toml", f'locale = "{locale}"\n', monkeypatch)
    with pytest.raises(ValidationError, match="locale"):
        load_settings(**kwargs)


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_valid_locales(clean_env: Path, locale: str) -> None:
    assert load_settings(data_dir=clean_env / "d", locale=locale).locale == locale


def test_wrong_type_in_toml_names_the_setting(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(clean_env / "relicflow.toml", 'two_reviewer_grades = "一级"\n', monkeypatch)
    with pytest.raises(ValidationError, match="two_reviewer_grades"):
        load_settings(data_dir=clean_env / "d")


@pytest.mark.parametrize("defaults", [("api_key",), ("secret",), ("api_key", "secret")])
def test_a_real_issuer_url_refuses_the_sandbox_credentials(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                           defaults: tuple[str, ...]) -> None:
    monkeypatch.setenv("RELICFLOW_ISSUER_URL", "https://issuer.example/api")
    if "api_key" not in defaults:
        monkeypatch.setenv("RELICFLOW_ISSUER_API_KEY", "museum-key")
    if "secret" not in defaults:
        monkeypatch.setenv("RELICFLOW_ISSUER_SECRET", "museum-secret")
    with pytest.raises(ValidationError) as info:
        load_settings(data_dir=clean_env / "d")
    message = str(info.value)
    for name in defaults:
        assert f"RELICFLOW_ISSUER_{name.upper()}" in message
    assert "沙盒" in message  # said in Chinese too
    monkeypatch.setenv("RELICFLOW_ISSUER_API_KEY", "museum-key")
    monkeypatch.setenv("RELICFLOW_ISSUER_SECRET", "museum-secret")
    assert load_settings(data_dir=clean_env / "d").issuer_url == "https://issuer.example/api"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:9000/x", "http://[::1]:8765", "http://127.3.2.1", ""])
def test_the_sandbox_credentials_stay_fine_on_loopback(clean_env: Path, url: str) -> None:
    s = load_settings(data_dir=clean_env / "d", issuer_url=url)
    assert s.issuer_api_key.get_secret_value() == "sandbox-key" and s.issuer_chain == "sandbox-chain"


def test_a_copied_settings_object_cannot_smuggle_the_defaults_to_a_real_issuer(clean_env: Path) -> None:
    from relicflow.errors import ConfigurationError
    from relicflow.issuer_client import IssuerClient

    s = load_settings(data_dir=clean_env / "d").model_copy(update={"issuer_url": "https://issuer.example"})  # no validation
    with pytest.raises(ConfigurationError, match="RELICFLOW_ISSUER_API_KEY and RELICFLOW_ISSUER_SECRET"):
        IssuerClient.from_settings(s)
