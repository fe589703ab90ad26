"""The runtime's room: engines and the request session, where work commits, asyncpg, types.

``session`` (Base, ``db``), ``engines`` and ``work`` (``run_db``, ``transaction()``,
``autocommit()``) are what a request meets; ``asyncpg_pool`` and ``copy_in`` serve bulk
work and fan-out reads; ``types``, ``migrations`` and ``deadlines`` are machinery. Nothing
is imported here, so ``import app.models`` stays light (no asyncpg, no Alembic).
"""
