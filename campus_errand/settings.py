"""Campus Errand settings: one file, driven by environment variables only.

Safe local defaults (SpatiaLite file, in-memory channel layer, locmem cache) so that `make demo` and
`make test` need nothing running; DATABASE_URL / REDIS_URL switch to PostgreSQL + PostGIS and Redis.
DJANGO_ENV=production refuses to start without SECRET_KEY and FIELD_ENCRYPTION_KEY.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

VAR_DIR.mkdir(parents=True, exist_ok=True)  # local database, media and logs (git-ignored)
env = environ.Env()
PRODUCTION = env.str("DJANGO_ENV", default="development") == "production"

if PRODUCTION:
    for required in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY"):
        if not env.str(required, default=""):
            raise ImproperlyConfigured(f"{required} must be set when DJANGO_ENV=production")

SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me-0123456789abcdef")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys, comma separated: the first encrypts, all of them decrypt (rotation: put the new key
# first, run `manage.py rotate_field_key`, then drop the old one).
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEY", default=["ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="]
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "leaflet",
    "accounts",
    "campus",
    "merchants",
    "payments",
    "orders",
    "riders",
    "tracking",
    "dispatch",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "campus_errand.urls"
ASGI_APPLICATION = "campus_errand.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"spatialite:///{VAR_DIR / 'campus_errand.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.contrib.gis.db.backends.postgis":
    # Under ASGI each request's sync code runs in a fresh thread, so persistent connections pile up
    # (one idle connection per past request until PostgreSQL refuses new clients). Instead a
    # psycopg pool per process (Django's "pool" option): a request borrows an open connection and
    # gives it back at its end, instead of opening one (a new PostgreSQL backend) every time.
    # DB_POOL_MAX_SIZE=0 turns it off (connections opened and closed per request).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    _pool_max = env.int("DB_POOL_MAX_SIZE", default=10)
    if _pool_max > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": _pool_max,
            "timeout": env.int("DB_POOL_TIMEOUT", default=20),
        }
else:
    # A file test database lets the browser tests' server thread share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_campus_errand.sqlite3")}
    # IMMEDIATE: a writing transaction takes the write lock when it begins, so two concurrent
    # writers queue up instead of failing with "database is locked" half-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, channel layer -------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Django's Redis cache, one client per pool instead of one per call (campus_errand/cache.py).
    CACHES = {"default": {"BACKEND": "campus_errand.cache.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            # The pub/sub layer: the core layer drops group messages silently once a process
            # falls behind and forgets groups when Redis restarts (see README, "Running").
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Per process, a few seconds: rarely changed rows read on every request (campus_errand/memo.py).
CACHES["memo"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "memo",
    "OPTIONS": {"MAX_ENTRIES": 5000},
}
MEMO_SECONDS = env.int("MEMO_SECONDS", default=5)

# --- auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Media (item and receipt photos): local files under MEDIA_ROOT by default; S3-compatible object
# storage (AWS S3, MinIO, Tencent COS, Aliyun OSS) through django-storages when MEDIA_S3_BUCKET is
# set. Credentials come from boto3's usual sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
# Photos are private: they are served only through the order pages' permission checks.
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", default="")
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env.str("MEDIA_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MEDIA_S3_REGION", default="") or None,
            "location": env.str("MEDIA_S3_PREFIX", default="media"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so that an anonymous API call gets 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "campus_errand.api.AutoSchema",
    "EXCEPTION_HANDLER": "campus_errand.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Campus Errand API",
    "DESCRIPTION": "Orders, riders and live tracking for a campus errand and takeout platform.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema name per choice set; add new TextChoices here when they collide.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.status.Status",
        "OrderKindEnum": "orders.models.Kind",
        "BuildingKindEnum": "campus.models.BuildingKind",
        "RequiredGenderEnum": "orders.models.RequiredGender",
        "GenderRuleEnum": "campus.models.GenderRule",
        "RiderRatingTagEnum": "orders.models.RatingTag",
        "CustomerRatingTagEnum": "orders.models.CustomerRatingTag",
    },
}

# --- maps -----------------------------------------------------------------------------------
# No tiles by default: a closed campus network reaches no tile server. The campus is drawn from
# its own data (buildings and paths) instead; set MAP_TILE_URL to add a tile layer.
MAP_TILE_URL = env.str("MAP_TILE_URL", default="")
MAP_TILE_ATTRIBUTION = env.str("MAP_TILE_ATTRIBUTION", default="")
LEAFLET_CONFIG = {
    "TILES": [("tiles", MAP_TILE_URL, {"attribution": MAP_TILE_ATTRIBUTION})]
    if MAP_TILE_URL
    else [],
    "DEFAULT_CENTER": (30.3, 120.08),
    "DEFAULT_ZOOM": 16,
    "RESET_VIEW": False,
}

# --- tracking (privacy: see templates/privacy.html, which states these) -----------------------
# Raw rider fixes are deleted after TRACK_RETENTION_DAYS (`manage.py purge_tracks`, daily); the
# downsampled track of each order and the order chats after TRACK_ARCHIVE_DAYS.
TRACK_RETENTION_DAYS = env.int("TRACK_RETENTION_DAYS", default=7)
TRACK_ARCHIVE_DAYS = env.int("TRACK_ARCHIVE_DAYS", default=180)
TRACKING_CHAT_CLOSE_HOURS = env.float("TRACKING_CHAT_CLOSE_HOURS", default=2.0)
# How often each socket server re-estimates the ETA of the orders watched in it (0: never).
TRACKING_ETA_TICK_SECONDS = env.float("TRACKING_ETA_TICK_SECONDS", default=10.0)
# Threads per socket server process for the sockets' database work (tracking/threads.py).
TRACKING_SOCKET_DB_THREADS = env.int("TRACKING_SOCKET_DB_THREADS", default=1)

# --- product settings -----------------------------------------------------------------------
DEMO_CAMPUS_FILE = BASE_DIR / "campus" / "data" / "demo_campus.geojson"
ORDER_PHOTO_MAX_BYTES = env.int("ORDER_PHOTO_MAX_BYTES", default=8 * 1024 * 1024)
ORDER_PHOTOS_PER_DAY = env.int("ORDER_PHOTOS_PER_DAY", default=20)
PLACEHOLDER_ORDER_FEE_FEN = 500

# --- payments -------------------------------------------------------------------------------
# Gateways that may take top-ups (payments/gateways/). The sandbox signs its callbacks with
# PAYMENT_SANDBOX_SECRET; `check --deploy` warns while it runs with the dev default.
PAYMENT_GATEWAYS = env.list("PAYMENT_GATEWAYS", default=[] if PRODUCTION else ["sandbox"])
PAYMENT_SANDBOX_SECRET = env.str("PAYMENT_SANDBOX_SECRET", default="dev-only-sandbox-secret")
# A callback whose timestamp is further than this from now is refused as a replay.
PAYMENT_CALLBACK_TOLERANCE_SECONDS = env.int("PAYMENT_CALLBACK_TOLERANCE_SECONDS", default=300)

# --- security -------------------------------------------------------------------------------
SILENCED_SYSTEM_CHECKS = ["gis.W001"]  # GDAL < 3.9 on Debian 12; harmless for our use.
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
