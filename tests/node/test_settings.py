"""Settings: TOML file, TROC_* overrides, and refusals with one clear line."""

from __future__ import annotations

import pytest

from node.errors import ConfigError
from node.settings import association_lines, load_settings, render_toml


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


@pytest.mark.parametrize(("environ", "message"), [
    ({"TROC_QUIET_HOURS": "22h-8h"}, "quiet_hours must be FROM-UNTIL"),
    ({"TROC_QUIET_HOURS": "25-8"}, "two different hours from 0 to 23"),
    ({"TROC_QUIET_HOURS": "8-8"}, "two different hours"),
    ({"TROC_TIME_ZONE": "Mars/Olympus"}, "not a known time zone"),
    ({"TROC_TIME_ZONE": "../../etc/passwd"}, "not a known time zone"),
    ({"TROC_SMTP_HOST": "relay.example", "TROC_MAIL_FROM": ""}, "mail_from must be an address"),
    ({"TROC_SMTP_PORT": "70000"}, "smtp_port must be 1 to 65535"),
    ({"TROC_SMTP_SECURITY": "ssl3"}, "smtp_security must be one of"),
    ({"TROC_MAIL_FROM": "troc@example.org\r\nBcc: x@y.fr"}, "mail_from must be on one line"),
    ({"TROC_SMTP_TIMEOUT_S": "0"}, "smtp_timeout_s must be at least 1"),
])  # fmt: skip
def test_bad_mail_settings_are_refused_clearly(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, environ)


def test_quiet_hours_and_the_relay_password_are_read_and_the_password_never_shows(tmp_path):
    settings = load_settings(tmp_path, {"TROC_QUIET_HOURS": "none", "TROC_SMTP_PASSWORD": "s3cret",
                                        "TROC_SMTP_HOST": "relay.example",
                                        "TROC_MAIL_FROM": "troc@example.org"})  # fmt: skip
    assert settings.quiet_range is None and settings.mail_enabled
    assert settings.smtp_secret.reveal() == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.smtp_secret)
    assert load_settings(tmp_path, {}).quiet_range == (22, 8)


@pytest.mark.parametrize(("environ", "message"), [
    ({"TROC_ASSOCIATION_PHONE": "appelez-nous"}, "association_phone must be a phone number"),
    ({"TROC_ASSOCIATION_PHONE": "05 53 66\n00 00"}, "association_phone must be on one line"),
    ({"TROC_ASSOCIATION_EMAIL": "contact chez nous"}, "association_email must be an address"),
    ({"TROC_ASSOCIATION_ADDRESS": "x" * 301}, "association_address must have at most 300"),
    ({"TROC_ASSOCIATION_HOURS": "mardi\x1b[31m"}, "association_hours must be on one line"),
])  # fmt: skip
def test_bad_association_settings_are_refused_clearly(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, environ)


def test_the_association_lines_are_read_from_one_setting(tmp_path):
    settings = load_settings(tmp_path, {
        "TROC_ASSOCIATION_ADDRESS": " Centre social | 2 rue Lamartine |  | 47000 Agen ",
        "TROC_ASSOCIATION_PHONE": "+33 5 53 66 00 00",
        "TROC_ASSOCIATION_EMAIL": "accueil@cs-agen.fr",
    })  # fmt: skip
    assert association_lines(settings.association_address) == [
        "Centre social", "2 rue Lamartine", "47000 Agen"]  # fmt: skip
    assert association_lines(load_settings(tmp_path, {}).association_hours) == []


@pytest.mark.parametrize("value, message", [
    ("9464", "metrics_listen must be HOST:PORT or empty"),
    ("127.0.0.1:0", "metrics_listen must be HOST:PORT or empty"),
    ("127.0.0.1:8080", "metrics_listen must differ from listen"),
])  # fmt: skip
def test_a_bad_metrics_address_is_refused_clearly(tmp_path, value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, {"TROC_METRICS_LISTEN": value})


def test_metrics_are_off_the_network_unless_an_address_is_given(tmp_path):
    assert load_settings(tmp_path, {}).metrics_address is None
    given = load_settings(tmp_path, {"TROC_METRICS_LISTEN": "127.0.0.1:9464"})
    assert given.metrics_address == ("127.0.0.1", 9464)


@pytest.mark.parametrize("environ, message", [
    ({"TROC_WORKERS": "0"}, "workers must be 1 to 64"),
    ({"TROC_WORKERS": "65"}, "workers must be 1 to 64"),
    ({"TROC_WORKERS": "2"}, "workers above 1 need PostgreSQL"),
    ({"TROC_WORKERS": "deux"}, "TROC_WORKERS must be a whole number"),
])  # fmt: skip
def test_workers_are_bounded_and_several_need_postgresql(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, environ)


def test_several_workers_on_postgresql_are_accepted(tmp_path):
    settings = load_settings(tmp_path, {
        "TROC_WORKERS": "4", "TROC_DATABASE_URL": "postgresql+asyncpg://troc@127.0.0.1/troc"})
    assert settings.workers == 4
