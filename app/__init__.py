"""The user-management API: ``create_app()`` builds it (see app.factory).

Importing a submodule (``app.config``, ``app.models``, as ``alembic`` does) builds nothing:
the factory and everything the web app needs are imported on first use of ``create_app``.
"""

from typing import TYPE_CHECKING, Any

from app.config import VERSION

if TYPE_CHECKING:
    from app.factory import App, create_app

__all__ = ["App", "__version__", "create_app"]
__version__ = VERSION


def __getattr__(name: str) -> Any:
    if name in {"App", "create_app"}:
        from app import factory  # noqa: PLC0415 - lazily, on first use

        return getattr(factory, name)
    msg = f"module 'app' has no attribute {name!r}"
    raise AttributeError(msg)
