"""Configuration: one TOML file, every key overridable by FRONTDESK__SECTION__KEY.

Validation happens once at start; an error names the offending key so an operator
can fix the file without reading code.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.vocab import CHANNELS, LANGUAGES, Language

ENV_PREFIX = "FRONTDESK__"
# The languages of the people Frontdesk serves; catalogues exist for each.


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite://var/frontdesk.sqlite3"
    # PostgreSQL, several gateways: how often a standby tries to take the lead (and the
    # leader checks it still holds it), in seconds. A dead leader is replaced within this
    # plus the new leader's AMI sync.
    leader_poll: float = 1.0


@dataclass(frozen=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "frontdesk"
    secret: str = ""
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    max_frame_bytes: int = 65536
    # Prefix of our dialplan's UserEvents (FrontdeskCall, FrontdeskCallEnd, ...).
    userevent_prefix: str = "Frontdesk"


@dataclass(frozen=True)
class TelegramSettings:
    token: str = ""
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    poll_timeout: float = 30.0
    # Requests per second the bot sends at most, all chats together (Telegram takes
    # about 30; several gateways on one token share it: 30 / instances each).
    send_rate: float = 30.0
    # Messages per second to one chat after a burst of 3 (Telegram takes about one);
    # 0: no pacing per chat (a Bot API stand-in without flood limits).
    chat_rate: float = 1.0
    # "polling" (getUpdates, one instance) or "webhook" (several instances behind one
    # address: Telegram posts each update to webhook_url, a proxy hands it to one of them).
    mode: str = "polling"
    # The public https URL Telegram posts to (normally ending in webhook_path).
    webhook_url: str = ""
    # Where this gateway's HTTP server takes the posts (same port as /healthz).
    webhook_path: str = "/telegram/webhook"
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token: 1-256 of A-Z a-z 0-9 _ -.
    webhook_secret: str = ""


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class OutboxSettings:
    batch: int = 50
    lease_seconds: float = 60.0
    retry_initial: float = 2.0
    retry_max: float = 600.0
    give_up_after: float = 86400.0
    idle_poll: float = 1.0
    # Sends under way at once per channel; a crash may repeat up to this many per channel.
    in_flight: int = 1


@dataclass(frozen=True)
class LocaleSettings:
    # Used when a subscriber is created without its own, and for numbers without a country code.
    default_language: str = Language.EN
    default_timezone: str = "Europe/Athens"
    default_region: str = "GR"


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"


@dataclass(frozen=True)
class SmtpSettings:
    # Empty host: the email channel is off.
    host: str = ""
    port: int = 587
    # "starttls" (port 587), "tls" (implicit TLS, port 465) or "none" (loopback relays only).
    security: str = "starttls"
    username: str = ""
    password: str = ""
    from_address: str = "frontdesk@localhost"
    # Where replies go (commands by email come later); empty: no Reply-To header.
    reply_to: str = ""
    timeout: float = 30.0
    # A PEM file of CA certificates to trust besides the system's (a private relay).
    ca_file: str = ""


@dataclass(frozen=True)
class SmppSettings:
    # Empty host: the SMS channel is off.
    host: str = ""
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    # Our sender: an alphanumeric name (ton 5) or a number (ton 1, npi 1).
    source_addr: str = "Frontdesk"
    source_ton: int = 5
    source_npi: int = 0
    # submit_sm sent and not yet answered, at most.
    window: int = 10
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    # After ESME_RTHROTTLED: pause sending this long (doubling while it persists).
    throttle_delay: float = 1.0
    # Longest text, in SMS parts; longer texts are cut cleanly with an ellipsis.
    max_parts: int = 6


@dataclass(frozen=True)
class MmsSettings:
    # Empty url: the MMS channel is off. The MMSC's MM7 endpoint (SOAP over HTTP).
    url: str = ""
    vasp_id: str = ""
    vas_id: str = ""
    username: str = ""
    password: str = ""
    sender_address: str = ""
    timeout: float = 30.0
    # HTTP Basic credentials the MMSC must show when it posts delivery reports to
    # /hooks/mm7; empty: username/password above. No password at all: reports refused.
    report_username: str = ""
    report_password: str = ""
    # Addresses or networks the MMSC posts reports from, comma-separated; empty: any.
    report_from: str = ""


@dataclass(frozen=True)
class RoutingSettings:
    # Channels tried in order when a subscriber has no preference for a kind of event;
    # "telegram+email" tells both at once (one hop).
    default_channels: str = "telegram,email,sms"
    # An urgent message nobody acknowledges within this many seconds escalates.
    escalate_after: float = 300.0


@dataclass(frozen=True)
class VoicemailSettings:
    # Asterisk's voicemail spool (contains <context>/<box>/INBOX/msgNNNN.{wav,txt}).
    # Empty: voicemail delivery is off.
    spool: str = ""
    # How often the spool is rescanned, seconds (AMI MessageWaiting also triggers a scan).
    scan_interval: float = 60.0
    # Longest transcript sent by SMS, in SMS parts (cut cleanly).
    sms_parts: int = 3
    # Where Frontdesk keeps its own copy of each message's audio (the mailbox owner may
    # delete the original before every channel has it).
    archive: str = "var/voicemail"
    # A message shorter than this, seconds (the caller hung up at the beep), is told as a
    # missed call, not as a voicemail without words. 0: every message is a voicemail.
    min_seconds: float = 1.0


@dataclass(frozen=True)
class TranscriptionSettings:
    # "whisper" (faster-whisper), "sphinx" (English only) or "none".
    engine: str = "whisper"
    # Whisper model: a directory with a CTranslate2 model, an installed model package's
    # name, or a model name faster-whisper may download ("base"). Empty: the bundled one.
    model: str = ""
    # Transcriptions at once (each in its own process); threads per transcription.
    workers: int = 1
    threads: int = 2
    # A transcription taking longer than this is abandoned (the audio still goes out).
    timeout: float = 120.0


@dataclass(frozen=True)
class FaxSettings:
    # Shared secret of the HylaFAX hook's HMAC-SHA256 signature. Empty: /hooks/fax is off.
    secret: str = ""
    # Signed requests older (or newer) than this many seconds are refused as stale.
    max_age: float = 300.0
    # Where received faxes (TIFF and PDF) are kept; a corrupt TIFF stays here for admins.
    archive: str = "var/fax"
    # Largest upload accepted, bytes.
    max_bytes: int = 50_000_000
    # Faxes converted to PDF at once (each holds its TIFF and a decoded page in memory).
    conversions: int = 2
    # Largest page converted, in pixels (a fine A4 page has 4 M); checked before decoding.
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class MailInSettings:
    # Replies to our emails (smtp.reply_to's domain has its MX here). Empty host: off.
    host: str = ""
    port: int = 2525
    # Largest message accepted, bytes (replies are text; attachments are not read).
    max_bytes: int = 1_000_000


@dataclass(frozen=True)
class HealthSettings:
    # Seconds between health checks (AMI link, SMSC bind, outbox backlog, failing sends).
    check_interval: float = 15.0
    # A condition lasting this long opens an incident (one alert); a dead delivery at once.
    open_after: float = 5.0
    # An incident resolves (one "resolved" message) once clear this long: flaps stay one.
    hold_down: float = 30.0
    # Consecutive transient failures on email (smtp) or MMS (mmsc) that make an incident.
    failures: int = 3
    # The outbox is backing up: more due deliveries than this, or one due for longer.
    outbox_backlog: int = 500
    outbox_age: float = 600.0
    # Also email the alerts there (when the email channel is configured); empty: Telegram only.
    admin_email: str = ""


@dataclass(frozen=True)
class ReportsSettings:
    # Where last month's usage CSV is emailed on the 1st (comma-separated addresses; needs
    # [smtp]); empty: not sent (admins still get it with /usage in the bot).
    email: str = ""
    # A TrueType font with Greek, Cyrillic or Chinese letters for the PDF reports (e.g.
    # DejaVu Sans, Noto Sans CJK); empty: the built-in Latin font (other languages' reports
    # are then written in English).
    font: str = ""


@dataclass(frozen=True)
class WebSettings:
    # The subscriber's web desk (/desk): off unless session_secret is set (signs the
    # session cookie; FRONTDESK__WEB__SESSION_SECRET). base_url: where magic links point;
    # empty: http://127.0.0.1:<http.port>.
    base_url: str = ""
    session_secret: str = ""
    session_hours: int = 12
    link_minutes: int = 15
    link_requests_per_hour: int = 5


@dataclass(frozen=True)
class ReminderSettings:
    # Appointments with an end customer's mobile get an SMS the day before at this hour
    # (0-23, the subscriber's local time); a reply 1/2 (yes/no) confirms or cancels.
    enabled: bool = True
    hour: int = 18

    def __post_init__(self) -> None:
        if not 0 <= self.hour <= 23:
            raise ConfigError("config key reminders.hour: must be between 0 and 23")


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    locale: LocaleSettings = field(default_factory=LocaleSettings)
    log: LogSettings = field(default_factory=LogSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    smpp: SmppSettings = field(default_factory=SmppSettings)
    mms: MmsSettings = field(default_factory=MmsSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    voicemail: VoicemailSettings = field(default_factory=VoicemailSettings)
    transcription: TranscriptionSettings = field(default_factory=TranscriptionSettings)
    fax: FaxSettings = field(default_factory=FaxSettings)
    mail_in: MailInSettings = field(default_factory=MailInSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    reports: ReportsSettings = field(default_factory=ReportsSettings)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    web: WebSettings = field(default_factory=WebSettings)

    def secrets(self) -> list[tuple[str, str]]:
        """(section, value) of every secret configured: the log redaction hides them
        (the password a PostgreSQL `database.url` carries among them)."""
        found = [
            (section.name, value)
            for section in fields(self)
            for f in fields(getattr(self, section.name))
            if _is_secret(f.name) and (value := getattr(getattr(self, section.name), f.name))
        ]
        if password := url_password(self.database.url):
            found.append(("database", unquote(password)))  # its %-encoded forms come too
        return found

    def redacted(self) -> dict[str, dict[str, Any]]:
        """A view safe to log: secrets and tokens replaced."""
        out: dict[str, dict[str, Any]] = {}
        for section in fields(self):
            values = {}
            for f in fields(getattr(self, section.name)):
                value = getattr(getattr(self, section.name), f.name)
                values[f.name] = "***" if _is_secret(f.name) and value else value
            out[section.name] = values
        if password := url_password(self.database.url):
            out["database"]["url"] = self.database.url.replace(f":{password}@", ":***@", 1)
        return out


def url_password(url: str) -> str:
    """The password in a database URL's user part (`postgres://user:password@host/db`), as
    written there (%-encoded)."""
    try:
        return urlsplit(url).password or ""
    except ValueError:  # a malformed URL: nothing to hide, its use will fail clearly
        return ""


def _is_secret(key: str) -> bool:
    return key in {"secret", "token", "password"} or key.endswith(("_secret", "_password"))


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false"}:
            return value.lower() in {"1", "true", "yes", "on"}
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"config key {key}: expected {kind.__name__}, got {value!r}")


def _build_section(name: str, cls: type, raw: Mapping[str, Any]) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"config key {name}.{key}: unknown key (known: {sorted(known)})")
    values = {key: _coerce(f"{name}.{key}", raw[key], hints[key]) for key in raw}
    return cls(**values)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"environment variable {name}: expected {ENV_PREFIX}SECTION__KEY")
        out.setdefault(parts[0], {})[parts[1]] = value
    return out


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read TOML (if given), apply env overrides, validate; raise ConfigError naming the key."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
    for section, values in _env_overrides(os.environ if environ is None else environ).items():
        raw.setdefault(section, {}).update(values)
    sections = {f.name: f for f in fields(Settings)}
    built: dict[str, Any] = {}
    for name, values in raw.items():
        if name not in sections:
            raise ConfigError(f"config section [{name}]: unknown (known: {sorted(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"config section [{name}]: expected a table")
        cls = get_type_hints(Settings)[name]
        built[name] = _build_section(name, cls, values)
    settings = Settings(**built)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.database.url.split("://", 1)[0] not in {"sqlite", "postgres", "asyncpg", "psycopg"}:
        raise ConfigError(
            f"config key database.url: unsupported scheme in {settings.database.url!r}"
        )
    for key, port in (("ami.port", settings.ami.port), ("http.port", settings.http.port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"config key {key}: {port} is not a TCP port")
    if settings.log.level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"config key log.level: {settings.log.level!r} is not a log level")
    if settings.locale.default_language not in LANGUAGES:
        raise ConfigError(f"config key locale.default_language: one of {LANGUAGES}")
    if settings.transcription.engine not in {"whisper", "sphinx", "none"}:
        raise ConfigError("config key transcription.engine: one of whisper, sphinx, none")
    if settings.transcription.workers < 1 or settings.transcription.threads < 1:
        raise ConfigError("config key transcription.workers: workers and threads must be >= 1")
    if settings.smtp.security not in {"starttls", "tls", "none"}:
        raise ConfigError("config key smtp.security: one of starttls, tls, none")
    if problem := smtp_cleartext_login(settings.smtp):
        raise ConfigError(problem)
    try:
        parse_networks(settings.mms.report_from)
    except ValueError as exc:
        raise ConfigError(f"config key mms.report_from: {exc}") from exc
    if not 1 <= settings.smpp.window <= 1000:
        raise ConfigError("config key smpp.window: must be between 1 and 1000")
    if not 1 <= settings.smpp.max_parts <= 255:
        raise ConfigError("config key smpp.max_parts: must be between 1 and 255")
    if settings.fax.conversions < 1 or settings.fax.max_pixels < 1:
        raise ConfigError("config key fax.conversions: conversions and max_pixels must be >= 1")
    channels = [
        c.strip()
        for hop in settings.routing.default_channels.split(",")
        for c in hop.split("+")
        if c.strip()
    ]
    unknown = set(channels) - set(CHANNELS)
    if not channels or unknown:
        raise ConfigError(f"config key routing.default_channels: channels from {CHANNELS}")
    try:
        ZoneInfo(settings.locale.default_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("config key locale.default_timezone: unknown time zone") from exc
    if (
        settings.outbox.retry_initial <= 0
        or settings.outbox.retry_max < settings.outbox.retry_initial
    ):
        raise ConfigError("config key outbox.retry_max: must be >= outbox.retry_initial > 0")
    if settings.outbox.in_flight < 1:
        raise ConfigError("config key outbox.in_flight: must be >= 1")
    if problem := telegram_webhook_problem(settings.telegram):
        raise ConfigError(problem)


WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def telegram_webhook_problem(t: TelegramSettings) -> str | None:
    """What is wrong with the Telegram mode and webhook keys (never quoting the secret)."""
    if t.mode not in {"polling", "webhook"}:
        return f"config key telegram.mode: one of polling, webhook (got {t.mode!r})"
    if t.webhook_secret and not WEBHOOK_SECRET.fullmatch(t.webhook_secret):
        return "config key telegram.webhook_secret: 1-256 characters of A-Z a-z 0-9 _ -"
    if not t.webhook_path.startswith("/"):
        return f"config key telegram.webhook_path: must start with / (got {t.webhook_path!r})"
    if t.mode != "webhook":
        return None
    if not t.webhook_url:
        return "config key telegram.webhook_url: required when telegram.mode is webhook"
    if not t.webhook_url.startswith("https://"):
        return "config key telegram.webhook_url: Telegram posts only to an https:// URL"
    if not t.webhook_secret:
        return (
            "config key telegram.webhook_secret: required when telegram.mode is webhook "
            "(or FRONTDESK__TELEGRAM__WEBHOOK_SECRET)"
        )
    return None


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine by its address or by the name localhost (never by
    resolving a name: DNS may say otherwise tomorrow)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def smtp_cleartext_login(smtp: SmtpSettings) -> str | None:
    """Why these settings would send the SMTP password in clear, or None when they don't."""
    if smtp.security != "none" or not smtp.username or not smtp.host or is_loopback(smtp.host):
        return None
    return (
        f"config key smtp.security: 'none' would send smtp.password in clear to {smtp.host}; "
        "use starttls or tls ('none' with a login is for a relay on this machine only)"
    )


def parse_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses or networks ("192.0.2.10, 198.51.100.0/24")."""
    return [ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()]


def with_section(settings: Settings, name: str, **changes: Any) -> Settings:
    """A copy of settings with some keys of one section changed (used by the demo and tests)."""
    section: Any = getattr(settings, name)
    assert is_dataclass(section) and not isinstance(section, type)
    updated: dict[str, Any] = {name: replace(section, **changes)}
    return replace(settings, **updated)
