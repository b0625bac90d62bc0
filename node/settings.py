"""The node's settings: declared once, loaded in one place.

Each setting has a name, a type, a default and a help text. Values come from
``troc.toml`` in the data directory, then from ``TROC_<NAME>`` environment
variables (which win). docs/operating.md documents every setting; a test
checks it.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from node.errors import ConfigError
from protocol import limits

IPAddress = IPv4Address | IPv6Address

CONFIG_FILE = "troc.toml"
KEY_FILE = "node.key"
ADMIN_TOKEN_FILE = "admin.token"
# The recovery key (docs/protocol.md section 12): its private half is written
# once at `troc init`, for the operator to keep away from the server; its
# public half stays, for the node document.
RECOVERY_KEY_FILE = "recovery.key"
RECOVERY_PUBLIC_FILE = "recovery.pub"
ADMIN_SOCKET_FILE = "admin.sock"
SQLITE_FILE = "troc.db"
ENV_PREFIX = "TROC_"
MAX_GOSSIP_DELAY_MS = 10_000
MAX_ASSOCIATION_CHARS = 300  # each of the association_* settings, publication_director, hosting
MAX_NEW_MEMBER_DAYS = 365  # new_member_days
MAX_NEW_MEMBER_PER_DAY = 1000  # new_member_annonces_per_day, new_member_answers_per_day
MAX_PHOTO_CACHE_MB = 1_000_000  # photo_cache_mb: a terabyte
MAX_WORKERS = 64  # workers: processes on one machine
MAX_PHOTO_CACHE_DAYS = 3650  # photo_cache_days
PHONE = re.compile(r"\+?[0-9][0-9 .()-]{3,23}")
EMAIL = re.compile(r"[^@\s<>\"]{1,64}@[^@\s<>\"]{1,200}\.[^@\s<>\".]{2,63}")


class Secret:
    """A value that never shows in a repr, a log line or a traceback."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _setting(default, help_text: str, *, choices: tuple[str, ...] = (), secret: bool = False):
    return field(default=default, repr=not secret,
                 metadata={"help": help_text, "choices": choices, "secret": secret})  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Every setting of a node. ``data_dir`` is given on the command line."""

    data_dir: Path = field(metadata={"help": "the node's data directory"})
    name: str = _setting("Troc", "the association's name, shown to residents and peers")
    public_url: str = _setting(
        "http://127.0.0.1:8080", "the URL at which residents and peers reach this node"
    )
    listen: str = _setting("127.0.0.1:8080", "HOST:PORT the web server listens on")
    area: str = _setting("Agglomération d'Agen", "the area the association serves")
    database_url: str = _setting(
        "", "SQLAlchemy URL of the database; empty for SQLite in the data directory"
    )
    log_level: str = _setting(
        "INFO", "how much to log", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    log_format: str = _setting("text", "log line format", choices=("text", "json"))
    registration: str = _setting(
        "open", "who may create an account", choices=("open", "approval")
    )
    federation: str = _setting(
        "peers",
        "which nodes may call the federation API: accepted peers only, or any node",
        choices=("peers", "open"),
    )
    sync_interval_s: int = _setting(300, "seconds between two anti-entropy passes")
    purge_interval_s: int = _setting(600, "seconds between two purges of expired annonces")
    gossip_delay_ms: int = _setting(
        800,
        "milliseconds a node gathers new annonces before forwarding them to a peer: "
        "longer saves bandwidth, shorter saves time",
    )
    streams: str = _setting(
        "on",
        "whether annonces travel to and from peers over one long-lived connection each",
        choices=("on", "off"),
    )
    stream_delay_ms: int = _setting(
        20,
        "milliseconds a node gathers new annonces before forwarding them over a stream",
    )
    trusted_proxies: str = _setting(
        "",
        "addresses of the reverse proxies in front of the node, comma-separated: "
        "for requests from them, the client is read from X-Forwarded-For",
    )
    max_connections: int = _setting(1024, "connections the web server keeps open at once")
    header_timeout_s: int = _setting(
        10, "seconds a client has to send a request's line and headers"
    )
    body_timeout_s: int = _setting(
        60, "seconds a client has to send a whole request, body included, from its first byte"
    )
    keepalive_timeout_s: int = _setting(15, "seconds an idle connection is kept open")
    time_zone: str = _setting(
        "Europe/Paris", "the association's time zone: quiet hours, daily and weekly mail, sorties"
    )
    quiet_hours: str = _setting(
        "22-8", "hours when no notification is mailed, FROM-UNTIL (local time); none: any hour"
    )
    smtp_host: str = _setting("", "the association's mail relay; empty: no mail is sent")
    smtp_port: int = _setting(587, "the mail relay's port")
    smtp_security: str = _setting(
        "starttls",
        "how the connection to the relay is protected: STARTTLS, TLS from the start, or none "
        "(a relay on this machine only)",
        choices=("starttls", "tls", "none"),
    )
    smtp_user: str = _setting("", "the user name at the relay; empty: no login")
    smtp_password: str = _setting("", "the password at the relay (never logged)", secret=True)
    mail_from: str = _setting(
        "", "the sender of the node's mail, an address of the association's domain"
    )
    smtp_timeout_s: int = _setting(30, "seconds the relay has to answer each step")
    association_address: str = _setting(
        "", "the association's postal address, where residents come"
    )
    association_phone: str = _setting("", "the association's phone number for residents")
    association_hours: str = _setting(
        "", "when the association's permanence is open, in plain words"
    )
    association_email: str = _setting("", "an address where residents may write to the association")
    new_member_days: int = _setting(
        7, "days an account counts as new, held to the limits below; 0: no account is"
    )
    new_member_annonces_per_day: int = _setting(
        3, "annonces a new account may publish in 24 hours; 0: no limit"
    )
    new_member_answers_per_day: int = _setting(
        10, "annonces a new account may answer in 24 hours (replies are not counted); 0: no limit"
    )
    sheet_communes: str = _setting(
        "", "the communes of the printed sheet, INSEE codes separated by commas; empty: every "
        "commune of the area"
    )
    publication_director: str = _setting(
        "", "who answers for what the site publishes (legal notice), usually the president"
    )
    hosting: str = _setting(
        "", "who hosts the server: name, address and phone (legal notice), lines separated by |"
    )
    photo_cache_mb: int = _setting(
        500, "megabytes of other nodes' photos kept once viewed here; 0: none kept beyond a view"
    )
    photo_cache_days: int = _setting(
        30, "days another node's photo is kept here after it was last viewed"
    )
    workers: int = _setting(
        1, "web processes serving the node on its one port; more than 1 only with PostgreSQL"
    )
    metrics_listen: str = _setting(
        "", "HOST:PORT serving Prometheus metrics at /metrics (no login: bind it to loopback or "
        "a private network); empty: metrics only on the admin socket"
    )

    @property
    def smtp_secret(self) -> Secret:
        return Secret(self.smtp_password)

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_host)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def quiet_range(self) -> tuple[int, int] | None:
        """(first quiet hour, first hour of the morning), or None: never quiet."""
        return _quiet_range(self.quiet_hours)

    @cached_property
    def trusted_proxy_addresses(self) -> frozenset[IPAddress]:
        return frozenset(_proxy_addresses(self.trusted_proxies))

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen)[1]

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return _split_listen(self.metrics_listen) if self.metrics_listen else None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / SQLITE_FILE).resolve()}"

    @property
    def key_path(self) -> Path:
        return self.data_dir / KEY_FILE

    @property
    def recovery_key_path(self) -> Path:
        return self.data_dir / RECOVERY_KEY_FILE

    @property
    def recovery_public_path(self) -> Path:
        return self.data_dir / RECOVERY_PUBLIC_FILE

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / ADMIN_TOKEN_FILE

    @property
    def admin_socket_path(self) -> Path:
        return self.data_dir / ADMIN_SOCKET_FILE

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE


def setting_fields():
    """The declared settings, without ``data_dir``."""
    return [f for f in fields(Settings) if f.name != "data_dir"]


def _split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def load_settings(data_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read troc.toml (if present) and TROC_* overrides, and check every value."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    path = data_dir / CONFIG_FILE
    if path.exists():
        values.update(_read_toml(path))
    for f in setting_fields():
        env_name = ENV_PREFIX + f.name.upper()
        if env_name in environ:
            values[f.name] = _from_env(f, environ[env_name], env_name)
    settings = Settings(data_dir=data_dir, **values)
    check_settings(settings)
    return settings


def _read_toml(path: Path) -> dict[str, object]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    known = {f.name: f for f in setting_fields()}
    for name, value in raw.items():
        if name not in known:
            raise ConfigError(f"{path}: unknown setting {name!r}")
        expected = _type_of(known[name])
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"{path}: {name} must be {_TYPE_WORDS[expected]}")
    return raw


_TYPE_WORDS = {str: "a string", int: "a whole number"}


def _type_of(f) -> type:
    # Annotations are strings here (postponed evaluation).
    return {"str": str, "int": int}[f.type]


def _from_env(f, raw: str, env_name: str) -> object:
    if _type_of(f) is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{env_name} must be a whole number, not {raw!r}") from None
    return raw


def _proxy_addresses(text: str) -> list[IPAddress]:
    addresses = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            addresses.append(ip_address(part))
        except ValueError:
            raise ConfigError(f"trusted_proxies: {part!r} is not an IP address") from None
    return addresses


def check_settings(s: Settings) -> None:
    for f in setting_fields():
        choices = f.metadata.get("choices")
        if choices and getattr(s, f.name) not in choices:
            raise ConfigError(f"{f.name} must be one of {', '.join(choices)}")
    _split_listen(s.listen)
    if not 1 <= s.workers <= MAX_WORKERS:
        raise ConfigError(f"workers must be 1 to {MAX_WORKERS}")
    if s.workers > 1 and not s.database_url.startswith("postgresql"):
        raise ConfigError("workers above 1 need PostgreSQL (database_url): SQLite is served "
                          "by one process")  # fmt: skip
    if s.metrics_listen:
        try:
            _split_listen(s.metrics_listen)
        except ConfigError:
            raise ConfigError(f"metrics_listen must be HOST:PORT or empty, "
                              f"not {s.metrics_listen[:40]!r}") from None  # fmt: skip
        if _split_listen(s.metrics_listen) == _split_listen(s.listen):
            raise ConfigError("metrics_listen must differ from listen")
    if not s.public_url.startswith(("http://", "https://")):
        raise ConfigError("public_url must start with http:// or https://")
    if not s.name.strip() or len(s.name) > limits.MAX_NODE_NAME_CHARS:
        raise ConfigError(f"name must have 1 to {limits.MAX_NODE_NAME_CHARS} characters")
    for name in ("sync_interval_s", "purge_interval_s", "max_connections", "header_timeout_s",
                 "body_timeout_s", "keepalive_timeout_s"):  # fmt: skip
        if getattr(s, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    _proxy_addresses(s.trusted_proxies)
    if not 0 <= s.gossip_delay_ms <= MAX_GOSSIP_DELAY_MS:
        raise ConfigError(f"gossip_delay_ms must be 0 to {MAX_GOSSIP_DELAY_MS}")
    if not 0 <= s.stream_delay_ms <= MAX_GOSSIP_DELAY_MS:
        raise ConfigError(f"stream_delay_ms must be 0 to {MAX_GOSSIP_DELAY_MS}")
    _check_mail(s)
    _check_association(s)
    _check_new_members(s)
    sheet_commune_codes(s.sheet_communes)
    if not 0 <= s.photo_cache_mb <= MAX_PHOTO_CACHE_MB:
        raise ConfigError(f"photo_cache_mb must be 0 to {MAX_PHOTO_CACHE_MB}")
    if not 1 <= s.photo_cache_days <= MAX_PHOTO_CACHE_DAYS:
        raise ConfigError(f"photo_cache_days must be 1 to {MAX_PHOTO_CACHE_DAYS}")


def association_lines(text: str) -> list[str]:
    """A setting written as lines separated by « | », each without its spaces."""
    return [line.strip() for line in text.split("|") if line.strip()]


INSEE_CODE = re.compile(r"[0-9][0-9AB][0-9]{3}")


def sheet_commune_codes(text: str) -> tuple[str, ...]:
    """The INSEE codes of ``sheet_communes``, each once (whether the area has them is
    node/sheet.py's to say, once the communes are loaded)."""
    codes = tuple(dict.fromkeys(c.strip().upper() for c in text.split(",") if c.strip()))
    bad = [c for c in codes if not INSEE_CODE.fullmatch(c)]
    if bad:
        raise ConfigError(f"sheet_communes: {bad[0][:12]!r} is not an INSEE code (5 characters)")
    return codes


def _check_new_members(s: Settings) -> None:
    for name, most in (("new_member_days", MAX_NEW_MEMBER_DAYS),
                       ("new_member_annonces_per_day", MAX_NEW_MEMBER_PER_DAY),
                       ("new_member_answers_per_day", MAX_NEW_MEMBER_PER_DAY)):  # fmt: skip
        if not 0 <= getattr(s, name) <= most:
            raise ConfigError(f"{name} must be 0 to {most}")


def _check_association(s: Settings) -> None:
    for name in ("association_address", "association_phone", "association_hours",
                 "association_email", "publication_director", "hosting"):  # fmt: skip
        value = getattr(s, name)
        if len(value) > MAX_ASSOCIATION_CHARS:
            raise ConfigError(f"{name} must have at most {MAX_ASSOCIATION_CHARS} characters")
        if any(unicodedata.category(c) == "Cc" for c in value):  # line breaks, NUL, escapes
            raise ConfigError(f"{name} must be on one line (separate lines with | )")
    phone = s.association_phone
    if phone and not PHONE.fullmatch(phone):
        raise ConfigError("association_phone must be a phone number: digits, spaces, + . - ( )")
    if s.association_email and not EMAIL.fullmatch(s.association_email):
        raise ConfigError("association_email must be an address (name@domain)")


def _quiet_range(text: str) -> tuple[int, int] | None:
    if text.strip().lower() == "none":
        return None
    start, sep, end = text.partition("-")
    if not sep or not start.strip().isdigit() or not end.strip().isdigit():
        raise ConfigError(f"quiet_hours must be FROM-UNTIL in whole hours (22-8) or none, not {text!r}")
    first, last = int(start), int(end)
    if not (0 <= first <= 23 and 0 <= last <= 23) or first == last:
        raise ConfigError("quiet_hours: two different hours from 0 to 23, such as 22-8")
    return first, last


def _check_mail(s: Settings) -> None:
    _quiet_range(s.quiet_hours)
    try:
        ZoneInfo(s.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"time_zone: {s.time_zone!r} is not a known time zone") from None
    if not 0 < s.smtp_port < 65536:
        raise ConfigError("smtp_port must be 1 to 65535")
    if s.smtp_timeout_s < 1:
        raise ConfigError("smtp_timeout_s must be at least 1")
    for name in ("smtp_host", "smtp_user", "smtp_password", "mail_from"):
        if any(c in getattr(s, name) for c in "\r\n\0"):
            raise ConfigError(f"{name} must be on one line")
    if s.smtp_host and "@" not in s.mail_from:
        raise ConfigError("mail_from must be an address (name@domain) when smtp_host is set")


def render_toml(values: Mapping[str, object]) -> str:
    """The text of a troc.toml holding ``values``."""
    lines = ["# Troc node configuration. TROC_<NAME> environment variables override it."]
    for f in setting_fields():
        if f.name in values:
            lines.append(f"# {f.metadata['help']}")
            lines.append(f"{f.name} = {_toml_value(values[f.name])}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
