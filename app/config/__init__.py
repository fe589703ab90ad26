"""The settings: typed, read from the environment, and what follows from them.

``settings`` holds ``Settings``; ``paths`` where the package, its instance folder and .env
are; ``ceiling`` the connections a server opens to its database. Importing this package
loads no Flask (tests/test_imports.py).
"""

from app.config.ceiling import DEFAULT_MAX_CONNECTIONS, ConnectionCeiling, connection_ceiling
from app.config.paths import ENV_FILE, available_cpus, default_instance_path
from app.config.settings import (
    METRICS_DIR_VARIABLE,
    RATE_LIMIT_FILE,
    SETTINGS,
    Backend,
    Settings,
    current_settings,
    sqlalchemy_url,
)

# The release: pyproject.toml reads it here without importing the package (a literal, so
# setuptools finds it by reading the file); app.__version__ is this.
VERSION = "0.1.0"

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "ENV_FILE",
    "METRICS_DIR_VARIABLE",
    "RATE_LIMIT_FILE",
    "SETTINGS",
    "VERSION",
    "Backend",
    "ConnectionCeiling",
    "Settings",
    "available_cpus",
    "connection_ceiling",
    "current_settings",
    "default_instance_path",
    "sqlalchemy_url",
]
