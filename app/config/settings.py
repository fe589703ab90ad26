"""Typed settings read from the environment: the one place a setting is named and defaulted."""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import paths
from app.config.ceiling import DEFAULT_MAX_CONNECTIONS, connection_ceiling, size_pools

Backend = Literal["sqlite", "postgresql", "mysql"]
SETTINGS = "settings"  # the app's Settings, in app.extensions
# Where prometheus_client's multiprocess mode keeps each worker's metrics (app.telemetry.metrics);
# named here, not imported from prometheus_client, which reads it once at import: app.server
# sets it before that import happens in any worker.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The rate limits' counts in the instance folder, shared by the server's processes
# (app.web.rate_limits), unless RATE_LIMIT_STORAGE_URL names another storage.
RATE_LIMIT_FILE = "rate_limits.db"
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


class Settings(BaseSettings):
    """Service settings; every field can be set by an environment variable of the same name."""

    model_config = SettingsConfigDict(
        env_file=paths.ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    # Unset means the embedded default: a SQLite file in the instance folder, migrated when
    # the server first starts.
    DATABASE_URL: str | None = None
    INSTANCE_PATH: Path | None = None
    MAX_CONTENT_LENGTH: int = Field(default=1024 * 1024, ge=1024)
    # Each SQLAlchemy pool of a process (transactions; autocommit; a replica's). Unset, they
    # and ASYNCPG_POOL_SIZE are sized to fit DB_MAX_CONNECTIONS (size_pools), up to these.
    DB_POOL_SIZE: int = Field(default=10, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=10, ge=0)
    # The connections the whole server (every process) may open to its database; unset: the
    # backend's DEFAULT_MAX_CONNECTIONS (SQLite: no ceiling). Start-up refuses sizes past it.
    DB_MAX_CONNECTIONS: int | None = Field(default=None, ge=1)
    # Seconds a request waits for a pooled connection before it is a 503.
    DB_POOL_TIMEOUT: float = Field(default=3.0, gt=0)
    DB_CONNECT_TIMEOUT: int = Field(default=3, ge=1)
    # Deadlines of request work on PostgreSQL and MariaDB, in seconds: a statement, a wait
    # for a lock (MariaDB counts whole seconds, rounded up), a transaction left idle. Past
    # one the request is a 503 with Retry-After. The client side gives every checked-out
    # connection the statement timeout plus a second, for a server that stops answering.
    # How each server and driver is told them: app/db/deadlines.py.
    DB_STATEMENT_TIMEOUT: float = Field(default=5.0, gt=0)
    DB_LOCK_TIMEOUT: float = Field(default=2.0, gt=0)
    DB_IDLE_IN_TRANSACTION_TIMEOUT: float = Field(default=10.0, gt=0)
    # The same deadlines for bulk import and export, which may take minutes.
    DB_BULK_TIMEOUT: float = Field(default=600.0, gt=0)
    DB_OFFLOAD_THREADS: int = Field(default=32, ge=1)
    # Behind PgBouncer in transaction mode: no server-side prepared statements.
    DB_PGBOUNCER: bool = False
    # A direct connection for LISTEN (revoked keys reach every process at once), which
    # PgBouncer's transaction mode cannot carry; unset: DATABASE_URL.
    DB_LISTEN_URL: str | None = None
    # A streaming replica of DATABASE_URL (PostgreSQL) for reads that may be a little stale
    # (app/db/replicas.py); unset: every read goes to DATABASE_URL.
    DATABASE_REPLICA_URL: str | None = None
    ASYNCPG_POOL_SIZE: int = Field(default=10, ge=1)
    # Tests: log coroutine steps that block the loop, refuse SQL run on a loop thread.
    ASYNC_DEBUG: bool = False
    AUTO_MIGRATE: bool | None = None
    LOG_LEVEL: str = "INFO"
    # text: one readable line a record (flask run, the CLI); json: one JSON object a line
    # for every line the server, the app and alembic print (the container's default).
    LOG_FORMAT: Literal["text", "json"] = "text"
    SQL_ECHO: bool = False
    # The production server (python -m app.server): address, processes, app threads each.
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=1, le=65535)
    # The worker (python -m app.worker): its /healthz and /metrics on HOST at this port, and
    # seconds between its rounds (each seals the audit log's new events into the chain).
    WORKER_PORT: int = Field(default=8001, ge=1, le=65535)
    WORKER_INTERVAL: float = Field(default=5.0, gt=0, le=3600)
    # Webhook deliveries (app/worker/webhooks.py): requests in flight in one worker, in all
    # and to one endpoint; seconds to connect, between bytes of the answer, and for the
    # whole attempt (a receiver that stalls holds a slot no longer); attempts in all, and the
    # backoff between them (its first ceiling and its cap, doubling between: 15 attempts span
    # 14 to 28 hours, 21 on average); deliveries failed for good in a row that disable an
    # endpoint; seconds between looks for due deliveries when there were none.
    WEBHOOK_CONCURRENCY: int = Field(default=32, ge=1, le=1024)
    WEBHOOK_CONCURRENCY_PER_ENDPOINT: int = Field(default=4, ge=1, le=1024)
    WEBHOOK_CONNECT_TIMEOUT: float = Field(default=5.0, gt=0, le=60)
    WEBHOOK_READ_TIMEOUT: float = Field(default=10.0, gt=0, le=300)
    WEBHOOK_TIMEOUT: float = Field(default=15.0, gt=0, le=300)
    WEBHOOK_MAX_ATTEMPTS: int = Field(default=15, ge=1, le=100)
    WEBHOOK_RETRY_BASE: float = Field(default=60.0, gt=0)
    WEBHOOK_RETRY_CAP: float = Field(default=4 * 3600.0, gt=0)
    WEBHOOK_DISABLE_AFTER: int = Field(default=10, ge=1)
    WEBHOOK_POLL_INTERVAL: float = Field(default=0.5, gt=0, le=60)
    # Measured on 2 CPUs (bench/run.py --sweep, 8 app threads in all): 1 x 8 served 609 GET
    # and 508 POST req/s, 2 x 4 1,171 and 540, 4 x 2 1,574 and 665, 4 x 4 1,281 and 715. A
    # process's threads share one GIL, so processes scale and threads mostly wait; 4 threads,
    # not 2, so that two long imports or exports do not take a whole process.
    # Unset, also capped to the processes DB_MAX_CONNECTIONS can serve (size_pools).
    WEB_CONCURRENCY: int = Field(default_factory=lambda: 2 * paths.available_cpus(), ge=1)
    WEB_THREADS: int = Field(default=4, ge=1)
    # Seconds a stopping server lets requests in flight finish (SIGTERM, docker stop).
    GRACEFUL_TIMEOUT: int = Field(default=20, ge=1)
    # Seconds a client gets for its headers (from its first byte: HTTP/1 only, so a silent
    # connection is closed too), and may stay silent in the middle of a body.
    HEADER_READ_TIMEOUT: int = Field(default=10, ge=1, le=60)
    BODY_IDLE_TIMEOUT: float = Field(default=10.0, gt=0)
    # After its first BODY_IDLE_TIMEOUT seconds a body must keep arriving at this many bytes
    # a second on average: a gap bound alone let an 8-byte body drip for 56 s.
    BODY_MIN_RATE: int = Field(default=1024, ge=1)
    # Seconds a streamed response (an export) may wait for its reader to take a chunk; then
    # it is cut and its transaction ends: a stalled reader held a connection idle in
    # transaction for up to DB_BULK_TIMEOUT (600 s).
    STREAM_IDLE_TIMEOUT: float = Field(default=30.0, gt=0)
    # Exports at once in one process, and for one caller (each holds a connection while its
    # reader reads); past them a 503 with Retry-After.
    EXPORTS_PER_PROCESS: int = Field(default=3, ge=1)
    EXPORTS_PER_KEY: int = Field(default=2, ge=1)
    # Days change events are kept; `flask --app app audit prune` deletes older ones from the
    # chain's start and records an anchor the rest verifies from. Unset: kept for ever.
    AUDIT_RETENTION_DAYS: int | None = Field(default=None, ge=1)
    # Comma-separated host names (as written in webhook URLs) whose addresses may be private,
    # loopback or link-local: an in-house receiver, or a test's on 127.0.0.1. Every other
    # webhook URL must resolve to public addresses only, at registration and at delivery.
    WEBHOOK_ALLOWED_HOSTS: str = ""
    # Hours a rotated-out webhook secret keeps signing beside the new one (both signatures
    # are sent), so a receiver can switch to the new secret without missing a delivery.
    WEBHOOK_SECRET_OVERLAP: int = Field(default=24, ge=0, le=24 * 30)
    # Connections one server process holds at once (granian's backpressure): beyond them it
    # stops accepting. Idle and slow ones are closed by the timers above; the room is for
    # everybody else (1,100 slow header senders once filled the default of 256 a process
    # and took /healthz down for the whole header timeout).
    MAX_CONNECTIONS: int = Field(default=4096, ge=16)
    # Requests one client address may have in flight in one process (its body being read,
    # or the app working on it); past it a 429 at once, the connection closed.
    CLIENT_MAX_REQUESTS: int = Field(default=64, ge=1)
    # The largest body the server receives (imports; spooled to disk past 1 MiB).
    MAX_UPLOAD_BYTES: int = Field(default=1 << 30, ge=1 << 20)
    # Seconds with every app thread busy and none finishing before /healthz says "stuck".
    STUCK_AFTER: float = Field(default=60.0, gt=0)
    # The longest line (NDJSON) or physical line (CSV) an import takes: memory stays
    # bounded whatever the file holds (one 100 MB line once took a worker to 667 MB).
    IMPORT_MAX_LINE_BYTES: int = Field(default=64 * 1024, ge=1024)
    # Hours a POST's response is kept for retries that send its Idempotency-Key again.
    IDEMPOTENCY_KEY_HOURS: int = Field(default=24, ge=1)
    # Minutes a user's access token works (sign-in, refresh); days its refresh token does.
    ACCESS_TOKEN_TTL: int = Field(default=15, ge=1, le=24 * 60)
    REFRESH_TOKEN_TTL: int = Field(default=30, ge=1, le=366)
    # Origins whose pages may call the API from a browser, comma-separated (empty: none).
    CORS_ORIGINS: str = ""
    # Requests per API key (without a valid key: per client address), in the ``limits``
    # library's notation ("1200/minute", "20/second;1000/hour"); empty turns limiting off.
    # Unset on the embedded database: off. It is the development default, on loopback, and
    # a loop of 1,300 GETs with its printed key met a 429 at the 1,196th; the image sets
    # this default again (Dockerfile), since a container may be reached from elsewhere.
    RATE_LIMIT: str = "1200/minute"
    # Where the counts live. Empty: a SQLite file in the instance folder (rate_limits.db),
    # one budget across the processes of this server; sqlite:///<file>: another such file;
    # redis://...: one budget across every process and replica; memory://: each process
    # its own (RATE_LIMIT=5/minute with 4 processes let 20 through a minute).
    RATE_LIMIT_STORAGE_URL: str = ""
    # Sign-in attempts (POST /auth/sessions), counted before the password is verified, per
    # account name given (in any letter case) and per client address, in the same storage.
    # Empty: off. A name's budget is small (guessing one account's password); an address's
    # is larger (several people behind one NAT), and bounds a spray over many names.
    SIGN_IN_LIMIT: str = "10/minute;50/hour"
    SIGN_IN_ADDRESS_LIMIT: str = "30/minute;300/hour"

    # Mail (docs/how-to/mail.md): the worker sends it, never a request. SMTP_URL: smtp://
    # (plain), smtp+starttls:// or smtps:// (TLS from the start), user:password@ when the
    # server asks; empty: the worker writes each message to its log instead (and says so).
    SMTP_URL: str = ""
    MAIL_FROM: str = "User API <no-reply@localhost>"
    # The base of every link a mail carries (the request's Host header is never used): the
    # front end that serves /invitation, /password-reset and /email-verification.
    PUBLIC_URL: str = "http://127.0.0.1:8000"
    # Minutes a mailed token works, from the moment the worker sends it.
    MAIL_TOKEN_TTL: int = Field(default=60, ge=5, le=7 * 24 * 60)
    # Attempts at a message before it is failed for good (backoff between them).
    MAIL_MAX_ATTEMPTS: int = Field(default=6, ge=1, le=20)
    # open: POST /auth/signup creates accounts (verified by mail); off: it answers 404.
    SIGNUP: Literal["off", "open"] = "off"
    # Mail anyone may ask for (a reset, a sign-up, a user's own change of address; not an
    # admin's invitation), per target address and per client address, in the rate limits'
    # storage. Empty: off.
    MAIL_LIMIT: str = "3/10minutes;10/day"
    MAIL_ADDRESS_LIMIT: str = "10/minute;100/hour"

    @field_validator(
        "RATE_LIMIT", "SIGN_IN_LIMIT", "SIGN_IN_ADDRESS_LIMIT", "MAIL_LIMIT", "MAIL_ADDRESS_LIMIT"
    )
    @classmethod
    def _readable_rate_limit(cls, value: str) -> str:
        if value.strip():
            # Here, not at the top: importing the settings must not load the limits library.
            from limits import parse_many  # noqa: PLC0415

            parse_many(value)  # a ValueError naming what it could not read
        return value.strip()

    @field_validator("RATE_LIMIT_STORAGE_URL")
    @classmethod
    def _named_rate_limit_file(cls, value: str) -> str:
        # "sqlite://" alone would be a database of each connection's own: no shared count.
        value = value.strip()
        path = value.removeprefix("sqlite:///") if value.startswith("sqlite:///") else ""
        if value.startswith("sqlite:") and not path.strip("/"):
            msg = "RATE_LIMIT_STORAGE_URL: sqlite:///<file> names the file the counts live in"
            raise ValueError(msg)
        return value

    @property
    def rate_limit_storage_url(self) -> str:
        """RATE_LIMIT_STORAGE_URL, or the instance folder's SQLite file when it is empty."""
        if self.RATE_LIMIT_STORAGE_URL:
            return self.RATE_LIMIT_STORAGE_URL
        return f"sqlite:///{self.instance_path / RATE_LIMIT_FILE}"

    @field_validator("SMTP_URL")
    @classmethod
    def _smtp_scheme(cls, value: str) -> str:
        value = value.strip()
        if value and value.partition("://")[0] not in SMTP_SCHEMES:
            msg = f"SMTP_URL: the scheme must be one of {', '.join(SMTP_SCHEMES)}"
            raise ValueError(msg)
        return value

    @field_validator("PUBLIC_URL")
    @classmethod
    def _public_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            msg = "PUBLIC_URL must start with http:// or https://"
            raise ValueError(msg)
        return value.rstrip("/")

    @property
    def cors_origins(self) -> list[str]:
        """CORS_ORIGINS as a list; empty when browsers on other origins are not let in."""
        return [origin.strip() for origin in self.CORS_ORIGINS.split(",") if origin.strip()]

    @property
    def webhook_allowed_hosts(self) -> frozenset[str]:
        """WEBHOOK_ALLOWED_HOSTS as a set of lower-case host names."""
        return frozenset(
            host.strip().lower() for host in self.WEBHOOK_ALLOWED_HOSTS.split(",") if host.strip()
        )

    @property
    def embedded(self) -> bool:
        """Whether the database is the embedded default (no DATABASE_URL)."""
        return self.DATABASE_URL is None

    @property
    def instance_path(self) -> Path:
        """The folder of the embedded database and other local state (default_instance_path)."""
        return (self.INSTANCE_PATH or paths.default_instance_path()).resolve()

    @cached_property
    def database_url(self) -> str:
        """The SQLAlchemy URL: DATABASE_URL with psycopg named, or the embedded SQLite file.

        Nothing is made here: whoever creates the embedded database makes its folder, so
        reading settings (a script, a check) never leaves an empty folder or file behind.
        """
        if self.DATABASE_URL is None:
            return f"sqlite:///{self.embedded_database}"
        return sqlalchemy_url(self.DATABASE_URL)

    @cached_property
    def replica_url(self) -> str | None:
        """The SQLAlchemy URL of DATABASE_REPLICA_URL, with the driver named as for the primary."""
        return sqlalchemy_url(self.DATABASE_REPLICA_URL) if self.DATABASE_REPLICA_URL else None

    @field_validator("DATABASE_REPLICA_URL")
    @classmethod
    def _replica_of_postgresql(cls, value: str | None) -> str | None:
        if value is not None and not sqlalchemy_url(value).startswith("postgresql"):
            msg = "DATABASE_REPLICA_URL must be a PostgreSQL streaming replica"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _embedded_rate_limit_off(self) -> "Settings":
        if "RATE_LIMIT" not in self.model_fields_set and self.embedded:
            self.__dict__["RATE_LIMIT"] = ""  # through __dict__: assigned, it would count as set
        return self

    @model_validator(mode="after")
    def _within_connection_budget(self) -> "Settings":
        # Refused here, with the arithmetic, the server's master process stops before forking
        # a worker: not the database refusing clients ("too many clients") under load.
        if self.backend == "sqlite":
            return self
        size_pools(self)
        ceiling = connection_ceiling(self)
        budget, per = ceiling.budget or 0, ceiling.per_process
        if ceiling.total > budget:
            of = f" (its default, of max_connections {DEFAULT_MAX_CONNECTIONS[self.backend][1]})"
            msg = (
                f"{ceiling} connections > DB_MAX_CONNECTIONS {budget}"
                f"{'' if self.DB_MAX_CONNECTIONS else of}: at {per} a process, {budget // per} "
                "fit. Lower WEB_CONCURRENCY, the pools (DB_POOL_SIZE, DB_MAX_OVERFLOW, "
                "ASYNCPG_POOL_SIZE; unset, sized to fit, a SQLAlchemy pool never below WEB_THREADS "
                "+ EXPORTS_PER_PROCESS) or those, or raise DB_MAX_CONNECTIONS with max_connections."
            )
            raise ValueError(msg)
        return self

    @property
    def embedded_database(self) -> Path:
        """The file of the embedded database (used only when DATABASE_URL is unset)."""
        return self.instance_path / "app.db"

    @cached_property
    def backend(self) -> Backend:
        """Which database this is; the one place that asks (MariaDB is "mysql")."""
        # Cached as database_url is: every write asks (app.services.events.write_unit).
        for backend in ("postgresql", "mysql"):
            if self.database_url.startswith(backend):
                return backend
        return "sqlite"

    @property
    def migrates_on_start(self) -> bool:
        """Whether the server applies migrations as it starts: by default only for the
        embedded database."""
        return self.embedded if self.AUTO_MIGRATE is None else self.AUTO_MIGRATE


def sqlalchemy_url(url: str) -> str:
    """Return the URL with our driver named where it is bare: psycopg 3 for ``postgres://``,
    PyMySQL for ``mysql://`` and ``mariadb://`` (always utf8mb4, the only full UTF-8)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    for prefix in ("mysql://", "mariadb://", "mysql+pymysql://", "mariadb+pymysql://"):
        if url.startswith(prefix):
            # One dialect name, "mysql", for both servers: SQLAlchemy tells MariaDB apart at
            # connect time, and our compile rules and variants need only one name.
            named = "mysql+pymysql://" + url.removeprefix(prefix)
            if "charset=" in named:
                return named
            return named + ("&" if "?" in named else "?") + "charset=utf8mb4"
    return url


def current_settings() -> Settings:
    """Return the running app's typed settings."""
    # Here, not at the top: importing the settings (the models, Alembic) loads no Flask.
    from flask import current_app  # noqa: PLC0415

    settings: Settings = current_app.extensions[SETTINGS]
    return settings
