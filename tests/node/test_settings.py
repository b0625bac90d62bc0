"""Settings: TOML file, TROC_* overrides, and refusals with one clear line."""

from __future__ import annotations

import pytest

from node.errors import ConfigError
from node.settings import load_settings, render_toml


def test_defaults_without_a_file(tmp_path):
    settings = load_settings(tmp_path, {})
    assert settings.listen == "127.0.0.1:8080"
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")


def test_file_values_then_environment_overrides(tmp_path):
    (tmp_path / "troc.toml").write_text(render_toml({"name": "Le Pin", "sync_interval_s": 60}))
    settings = load_settings(tmp_path, {"TROC_SYNC_INTERVAL_S": "30", "TROC_LISTEN": "0.0.0.0:9000"})
    assert settings.name == "Le Pin"
    assert settings.sync_interval_s == 30
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)


@pytest.mark.parametrize(
    "content, message",
    [
        ("name = ", "is not valid TOML"),
        ("colour = 'blue'", "unknown setting 'colour'"),
        ("sync_interval_s = 'soon'", "sync_interval_s must be a whole number"),
        ("sync_interval_s = true", "sync_interval_s must be a whole number"),
        ("listen = 'nowhere'", "listen must be HOST:PORT"),
        ("listen = 'host:99999'", "listen must be HOST:PORT"),
        ("public_url = 'ftp://x'", "public_url must start with http"),
        ("registration = 'everyone'", "registration must be one of open, approval"),
        ("name = ''", "name must have 1 to"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(tmp_path, content, message):
    (tmp_path / "troc.toml").write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, {})
    assert message in caught.value.detail


def test_non_utf8_configuration_is_refused(tmp_path):
    (tmp_path / "troc.toml").write_bytes(b"name = '\xff\xfe'")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path, {})


def test_bad_environment_override_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="TROC_SYNC_INTERVAL_S must be a whole number"):
        load_settings(tmp_path, {"TROC_SYNC_INTERVAL_S": "ten"})


@pytest.mark.parametrize("value", ["nginx", "127.0.0.1, 300.1.1.1", "10.0.0.0/8"])
def test_trusted_proxies_must_be_addresses(tmp_path, value):
    with pytest.raises(ConfigError, match="trusted_proxies: .* is not an IP address"):
        load_settings(tmp_path, {"TROC_TRUSTED_PROXIES": value})


def test_trusted_proxies_are_parsed(tmp_path):
    settings = load_settings(tmp_path, {"TROC_TRUSTED_PROXIES": " 127.0.0.1 , ::1,"})
    assert {str(a) for a in settings.trusted_proxy_addresses} == {"127.0.0.1", "::1"}
