"""The declarative base, the request session and the Flask-SQLAlchemy extension object."""

from datetime import datetime
from typing import Any, ClassVar

from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Connection, Engine, MetaData
from sqlalchemy.orm import DeclarativeBase, registry

from app.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; our own class so mypy --strict sees real types."""

    # On a registry, not on Base: Flask-SQLAlchemy 3.1 drops Base-level settings (#1361).
    registry: ClassVar[registry] = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


# The bind key of a second engine on the same database whose connections stay in
# autocommit: a one-statement unit of work costs one round trip (no BEGIN, no COMMIT) and
# no isolation-level switch on checkout and back on return, as a per-use option would.
AUTOCOMMIT = "autocommit"


class Session(FlaskSession):
    """The request session; inside ``app.db.work.autocommit()`` it uses the autocommit engine."""

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: Engine | Connection | None = None,
        **kwargs: Any,
    ) -> Engine | Connection:
        """Choose the autocommit engine while ``autocommit()`` holds, else Flask-SQLAlchemy's."""
        if bind is None and self.info.get(AUTOCOMMIT):
            return self._db.engines[AUTOCOMMIT]
        return super().get_bind(mapper, clause, bind, **kwargs)


# Serialising after commit must not cost a SELECT per object.
db = SQLAlchemy(
    model_class=Base,
    disable_autonaming=True,
    session_options={"class_": Session, "expire_on_commit": False},
)


def autocommit_engine() -> Engine:
    """The engine for work outside the request session that commits statement by statement."""
    return db.engines[AUTOCOMMIT]
