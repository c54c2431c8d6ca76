"""Settings: one module, every deployment knob from the environment.

Local defaults are safe and need nothing installed but Python: the
project-owned PostgreSQL under ``var/pg`` (``scripts/pg.py``) and a filesystem
Celery broker under ``var/``.  Production sets ``DATABASE_URL`` (its own
PostgreSQL) and ``CELERY_BROKER_URL`` (Redis or RabbitMQ).
"""

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url

from config import embedded_db

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# Production sets SECRET_KEY. Without it only a DEBUG process starts (make run
# sets DEBUG=1; the test suite sets its own key): never a production one on
# a key everybody can read in the repository.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        sys.exit("SECRET_KEY is not set: set it in the environment (DEBUG is off, so no built-in key is used)")
    SECRET_KEY = "local-only-insecure-key-for-debug"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://localhost:8000,http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "axes",
    # the layers, bottom to top: each imports only from those above it in this list
    "controls",
    "registry",
    "settlement",
    "custody",
    "reserves",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "controls.api.middleware.RefuseNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # admin login lockout after repeated failures (django-axes); last, as it asks
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Admin logins: AXES_FAILURE_LIMIT failures for one username from one address
# lock that pair out for AXES_COOLOFF_HOURS (or until an admin resets it:
# manage.py axes_reset).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "1"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Trusted proxies in front of the web workers that add X-Forwarded-For; 0:
# the client address is REMOTE_ADDR (a client cannot pick its own address).
NUM_PROXIES = int(os.environ.get("NUM_PROXIES", "0"))
if NUM_PROXIES:
    AXES_IPWARE_PROXY_COUNT = NUM_PROXIES
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# --- HTTPS and cookies (manage.py check --deploy is clean with DEBUG off) ----
# Production defaults: HTTPS only, HSTS for a year, secure cookies. Behind a
# TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=1 (it sends
# X-Forwarded-Proto); a plain-HTTP test rig sets SECURE_SSL_REDIRECT=0.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /health answers over plain HTTP too (load balancers probe it)
SECURE_REDIRECT_EXEMPT = [r"^health$"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL is the only engine: money is NUMERIC and exact to 18 decimals, and
# netting, exposure and reconciliation are set-based SQL. Without DATABASE_URL
# the project-owned server under var/pg is used (scripts/pg.py starts it).
DATABASE_URL = os.environ.get("DATABASE_URL") or embedded_db.database_url()
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")))}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    sys.exit(
        f"DATABASE_URL={DATABASE_URL.split(':', 1)[0]}:... is not supported: this backend runs on PostgreSQL only "
        "(exact NUMERIC money); unset DATABASE_URL to use the project's own server, or point it at PostgreSQL"
    )
# postgres://user@/db?host=/socket/dir puts the socket folder in OPTIONS; keep it
# as the host so nothing that rebuilds a URL from HOST falls back to a default
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
if not DATABASES["default"].get("HOST") and "host" in _db_options:
    DATABASES["default"]["HOST"] = _db_options.pop("host")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Asia/Hong_Kong"  # what the admin shows; storage is always UTC
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(16 * 1024 * 1024)))

# The cache holds request rates and failed-login counts. Locally, per
# process; production with several web workers sets CACHE_URL=redis://...
# so that every worker counts against the same limits.
CACHES: dict[str, Any] = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
        if os.environ.get("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "settlement"}
    )
}

# Staff API tokens (django-rest-knox): stored as a digest, valid this long.
STAFF_TOKEN_TTL_HOURS = int(os.environ.get("STAFF_TOKEN_TTL_HOURS", str(7 * 24)))
REST_KNOX = {"TOKEN_TTL": timedelta(hours=STAFF_TOKEN_TTL_HOURS), "AUTO_REFRESH": False}
# Failed authentications (a wrong API key or token) per client address: past
# this, 429 until the window passes (controls.api.auth).
AUTH_FAILURE_RATE = os.environ.get("AUTH_FAILURE_RATE", "10/min")

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.api.auth.OperatorApiKeyAuthentication",
        # operations staff: "Authorization: Token <token>" from create_staff_user (knox: hashed, expiring)
        "controls.api.auth.StaffTokenAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "controls.api.throttling.PrincipalRateThrottle",
        "controls.api.throttling.AddressRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "principal": os.environ.get("THROTTLE_PER_KEY", "1200/min"),
        "address": os.environ.get("THROTTLE_PER_ADDRESS", "2400/min"),
    },
    "NUM_PROXIES": NUM_PROXIES,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "controls.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Shared order book settlement API",
    "DESCRIPTION": "Matching engine and operations API (v1). Decimals are JSON strings.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Serve Swagger UI from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # every operation documents its error responses ({code, message, field})
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controls.api.schema.error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CycleKindEnum": ["intraday", "eod"],
        "CycleStatusEnum": ["running", "done"],
        "ReserveEntryKindEnum": ["contribution", "withdrawal", "reversal"],
    },
}

API_KEY_CUSTOM_HEADER = None  # use "Authorization: Api-Key <key>"

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Settlement policy (defaults; the network file overrides cap thresholds) --
# How far in the future an executed_at may lie before a trade is refused
# (clock skew between the matching engine and us).
TRADE_FUTURE_TOLERANCE_SECONDS = int(os.environ.get("TRADE_FUTURE_TOLERANCE_SECONDS", "30"))
TRADE_BATCH_MAX = 10_000
# A mark older than this is stale: new exposure in its asset is denied and what
# is owed in it is valued with a doubled haircut until a fresh mark arrives.
MARK_STALE_AFTER_SECONDS = int(os.environ.get("MARK_STALE_AFTER_SECONDS", str(15 * 60)))
# The suggested haircut (DESIGN section 5): this quantile of the price rise over
# the longest settlement horizon in the coming days, from this much marks history.
HAIRCUT_QUANTILE = Decimal(os.environ.get("HAIRCUT_QUANTILE", "0.99"))
HAIRCUT_HISTORY_DAYS = int(os.environ.get("HAIRCUT_HISTORY_DAYS", "365"))
HAIRCUT_HORIZON_LOOKAHEAD_DAYS = int(os.environ.get("HAIRCUT_HORIZON_LOOKAHEAD_DAYS", "90"))
HAIRCUT_MIN_SAMPLES = int(os.environ.get("HAIRCUT_MIN_SAMPLES", "30"))
# A reserving pre-trade check holds its room under the cap this long unless a
# trade names it first.
EXPOSURE_RESERVATION_TTL_SECONDS = int(os.environ.get("EXPOSURE_RESERVATION_TTL_SECONDS", "60"))
EXPOSURE_VERIFY_INTERVAL_SECONDS = int(os.environ.get("EXPOSURE_VERIFY_INTERVAL_SECONDS", "300"))
HKD_SCALE = 2
DEFAULT_THRESHOLDS = {
    "warn_at": Decimal("0.70"),
    "settle_at": Decimal("0.80"),
    "halt_at": Decimal("1.00"),
}

# --- Prefunding (circular para 10, DESIGN section 6a) ------------------------------
# Every hold expires: expires_at defaults to now + the default time to live
# and may not pass created + the maximum.
PREFUNDING_HOLD_DEFAULT_TTL_SECONDS = int(os.environ.get("PREFUNDING_HOLD_DEFAULT_TTL_SECONDS", str(24 * 3600)))
PREFUNDING_HOLD_MAX_TTL_SECONDS = int(os.environ.get("PREFUNDING_HOLD_MAX_TTL_SECONDS", str(30 * 24 * 3600)))
PREFUNDING_HOLD_BATCH_MAX = 1_000
PREFUNDING_OPEN_ORDERS_MAX = int(os.environ.get("PREFUNDING_OPEN_ORDERS_MAX", "200000"))
# The oldest a designated custodian's attestation may be, per rail kind,
# before new holds in its assets are refused (attestation_stale). The chain
# watcher reads designated wallets on every poll; custodians and banks
# report daily (a day and two hours' grace, unverified: a setting).
PREFUNDING_ATTESTATION_MAX_AGE_SECONDS = {
    "evm": int(os.environ.get("PREFUNDING_ATTESTATION_MAX_AGE_EVM_SECONDS", str(15 * 60))),
    "bank": int(os.environ.get("PREFUNDING_ATTESTATION_MAX_AGE_BANK_SECONDS", str(26 * 3600))),
    "manual": int(os.environ.get("PREFUNDING_ATTESTATION_MAX_AGE_MANUAL_SECONDS", str(26 * 3600))),
}
# The chain watcher records an unchanged designated-wallet balance again only
# after this long (a changed one at once).
PREFUNDING_CHAIN_ATTEST_EVERY_SECONDS = int(os.environ.get("PREFUNDING_CHAIN_ATTEST_EVERY_SECONDS", "60"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes.apps announces its version at INFO on every start; lockouts (axes.*) stay at WARNING
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}
# A counterparty is flagged for default review (an alert, never an automatic
# default) when an obligation has failed this many times or is this old.
DEFAULT_REVIEW_FAILS = int(os.environ.get("DEFAULT_REVIEW_FAILS", "3"))
DEFAULT_REVIEW_AGE_HOURS = int(os.environ.get("DEFAULT_REVIEW_AGE_HOURS", "48"))
# Affirmation (DESIGN section 7): minutes a counterparty has to affirm or
# dispute a new batch before home's outbound legs go out anyway ("deemed
# affirmed", recorded as such). 0: affirmation is not required.
BATCH_AFFIRMATION_WINDOW_MINUTES = int(os.environ.get("BATCH_AFFIRMATION_WINDOW_MINUTES", "0"))
# The end-of-day cycle's cut-off, local to Hong Kong (circular para 14).
EOD_CUTOFF_HKT = os.environ.get("EOD_CUTOFF_HKT", "22:00")
# --- Notifications (DESIGN section 10, circular para 15) --------------------------
# Attempts after the first for a delivery that fails, and the backoff between
# them (base x 2^n seconds, capped).
NOTIFY_MAX_RETRIES = int(os.environ.get("NOTIFY_MAX_RETRIES", "6"))
NOTIFY_RETRY_BASE_SECONDS = int(os.environ.get("NOTIFY_RETRY_BASE_SECONDS", "30"))
NOTIFY_RETRY_MAX_SECONDS = int(os.environ.get("NOTIFY_RETRY_MAX_SECONDS", "3600"))
NOTIFY_WEBHOOK_TIMEOUT_SECONDS = int(os.environ.get("NOTIFY_WEBHOOK_TIMEOUT_SECONDS", "5"))
# a break unresolved for longer than this is told once; a leg whose deadline
# is this close is told once
NOTIFY_BREAK_AGE_HOURS = int(os.environ.get("NOTIFY_BREAK_AGE_HOURS", "4"))
NOTIFY_DEADLINE_MINUTES = int(os.environ.get("NOTIFY_DEADLINE_MINUTES", "15"))
# on the first scan, failed batches, defaults and paid claims this recent are told
NOTIFY_LOOKBACK_HOURS = int(os.environ.get("NOTIFY_LOOKBACK_HOURS", "24"))
# e-mail through Django's mail: printed to the console unless EMAIL_BACKEND says otherwise
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "settlement@localhost")

# make run sets DEMO=1: enables the demo_activity command, whose confirmations
# are simulated and labelled as such. Never set it in production.
DEMO_MODE = env_bool("DEMO", False)
# The reserve fund's trust account (circular para 17): a ledger entry matches a
# statement entry whose value date lies within this many days of the entry's
# own date (HKT); a ledger entry no statement shows this many days after it was
# written is a break (statements arrive the next business day; unverified).
RESERVE_TRUST_MATCH_WINDOW_DAYS = int(os.environ.get("RESERVE_TRUST_MATCH_WINDOW_DAYS", "3"))
RESERVE_TRUST_GRACE_DAYS = int(os.environ.get("RESERVE_TRUST_GRACE_DAYS", "3"))
