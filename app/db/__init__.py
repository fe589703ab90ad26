"""The runtime's room: the request session and where its work commits, engines, asyncpg.

``session`` (``db``, ``run_db``, ``transaction()``, ``autocommit()``) is what a request
meets; ``base`` is what models build on; ``engines``, ``asyncpg_pool``, ``copy_in``,
``failures``, ``types``, ``migrations`` and ``deadlines`` are machinery. Nothing is imported
here, so ``import app.models`` stays light (no asyncpg, no Alembic).
"""
