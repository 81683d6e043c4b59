"""The trusted_proxies setting: canonical networks, and a clear refusal of anything else (a typo must not
silently trust nobody, or everybody)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relicflow.settings import Settings, load_settings


def test_trusted_proxies_default_to_none(settings: Settings) -> None:
    assert settings.trusted_proxies == []


def test_addresses_and_networks_are_kept_as_canonical_networks(settings: Settings) -> None:
    s = load_settings(data_dir=settings.data_dir, trusted_proxies=["10.0.0.5", " 192.168.1.7/24", "::1", "fd00::/8"])
    assert s.trusted_proxies == ["10.0.0.5/32", "192.168.1.0/24", "::1/128", "fd00::/8"]


def test_trusted_proxies_from_the_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELICFLOW_TRUSTED_PROXIES", '["127.0.0.1", "10.1.0.0/16"]')
    assert load_settings(data_dir=settings.data_dir).trusted_proxies == ["127.0.0.1/32", "10.1.0.0/16"]


@pytest.mark.parametrize("entry", ["*", "proxy.internal", "10.0.0.300", "10.0.0.0/33", ""])
def test_anything_but_an_address_or_network_is_refused_by_name(settings: Settings, entry: str) -> None:
    with pytest.raises(ValidationError) as error:
        load_settings(data_dir=settings.data_dir, trusted_proxies=[entry])
    assert f"trusted_proxies: {entry!r} is not an IP address or network" in str(error.value)
