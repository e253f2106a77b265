"""Settings: environment first, then `instance/config.py`, then embedded defaults."""
from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("METERDESK_INSTANCE", BASE_DIR / "instance"))

SETTING_NAMES = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "API_RATE_LIMIT", "TRUSTED_PROXIES", "REQUEST_TIMEOUT",
                 "ANOMALY_PCT", "WEBHOOK_RETRY_INTERVALS")
DEFAULT_REQUEST_TIMEOUT = 25.0  # seconds; below gunicorn's default worker timeout of 30 s
DEFAULT_ANOMALY_PCT = 50
DEFAULT_WEBHOOK_RETRY_INTERVALS = "60,300,900,2400"  # 5 tries within about an hour (61 minutes)


def load_secret_key(instance_dir: Path) -> str:
    """Read the secret key from `instance/secret_key`, generating it on first start."""
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def default_database_url(instance_dir: Path) -> str:
    return f"sqlite:///{instance_dir / 'meterdesk.db'}"


def build_config(overrides: dict | None = None) -> dict:
    """Return the app's settings as a dict, resolved in the order env > instance file > default."""
    overrides = dict(overrides or {})
    instance_dir = Path(overrides.get("INSTANCE_DIR") or INSTANCE_DIR)
    instance_dir.mkdir(parents=True, exist_ok=True)
    settings: dict = {}
    instance_file = instance_dir / "config.py"
    if instance_file.exists():
        namespace: dict = {}
        exec(compile(instance_file.read_text(), str(instance_file), "exec"), namespace)
        settings.update({k: v for k, v in namespace.items() if k.isupper()})
    for name in SETTING_NAMES:
        if os.environ.get(name):
            settings[name] = os.environ[name]
    settings.update(overrides)

    settings["INSTANCE_DIR"] = str(instance_dir)
    settings.setdefault("DATABASE_URL", default_database_url(instance_dir))
    settings.setdefault("REDIS_URL", "")
    settings.setdefault("API_RATE_LIMIT", "1200 per minute")
    settings["REQUEST_TIMEOUT"] = request_timeout(settings.get("REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT))
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = load_secret_key(instance_dir)
    settings["SQLALCHEMY_DATABASE_URI"] = settings["DATABASE_URL"]
    settings.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(settings["DATABASE_URL"]))
    settings.setdefault("SESSION_COOKIE_HTTPONLY", True)
    settings.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    settings.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    settings.setdefault("WTF_CSRF_TIME_LIMIT", None)
    settings.setdefault("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)
    settings.setdefault("RQ_QUEUE", "meterdesk")
    settings.setdefault("EXPORT_DIR", str(instance_dir / "exports"))
    settings["ANOMALY_PCT"] = anomaly_pct(settings.get("ANOMALY_PCT", DEFAULT_ANOMALY_PCT))
    settings["WEBHOOK_RETRY_INTERVALS"] = retry_intervals(
        settings.get("WEBHOOK_RETRY_INTERVALS", DEFAULT_WEBHOOK_RETRY_INTERVALS))
    return settings


def anomaly_pct(value) -> Decimal:
    """`ANOMALY_PCT`: how far (percent) projected usage may stray from its baseline before it is an anomaly."""
    try:
        pct = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"ANOMALY_PCT must be a number of percent, got {value!r}") from None
    if not pct.is_finite() or pct <= 0:
        raise ValueError(f"ANOMALY_PCT must be a positive number of percent, got {value!r}")
    return pct


def retry_intervals(value) -> list[int]:
    """`WEBHOOK_RETRY_INTERVALS`: seconds between delivery tries, e.g. `60,300,900,2400` (a list or that text)."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        seconds = [int(str(part).strip()) for part in parts]
    except ValueError:
        raise ValueError(f"WEBHOOK_RETRY_INTERVALS must be seconds separated by commas, got {value!r}") from None
    if not seconds or any(s < 0 for s in seconds):
        raise ValueError(f"WEBHOOK_RETRY_INTERVALS must be one or more seconds >= 0, got {value!r}")
    return seconds


def request_timeout(value) -> float:
    """`REQUEST_TIMEOUT` as seconds: a positive number (it may come from the environment as text)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"REQUEST_TIMEOUT must be a number of seconds, got {value!r}") from None
    if not 0 < seconds < float("inf"):
        raise ValueError(f"REQUEST_TIMEOUT must be a positive number of seconds, got {value!r}")
    return seconds


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True}
