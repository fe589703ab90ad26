"""The peer a user would pick instead: FastAPI + SQLAlchemy 2.0 async + asyncpg (uvicorn).

Written as FastAPI's docs and templates show it: a session per request from a dependency,
pydantic response models, the same three operations on our own table, a 409 from the
unique index. No API keys (like the tutorial's app): its figures carry no auth cost.
The pool holds as many connections as wrk opens, so it never reconnects under load.
"""

import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

URL = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql+asyncpg://")
engine = create_async_engine(URL, pool_size=16, max_overflow=0)
sessions = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    """The peer's own declarative base."""


class User(Base):
    """Our user_account table, mapped as the peer would."""

    __tablename__ = "user_account"
    # The server's defaults come back with the INSERT (RETURNING): async cannot lazy-load.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserIn(BaseModel):
    """A new user."""

    username: str
    email: str


class UserOut(BaseModel):
    """A user as returned."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    email: str
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
    """A page of users."""

    items: list[UserOut]


async def session() -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with sessions() as s:
        yield s


Session = Annotated[AsyncSession, Depends(session)]
app = FastAPI()


@app.get("/users/{user_id}")
async def get_user(user_id: int, db: Session) -> UserOut:
    """Get one user."""
    user = await db.get(User, user_id)
    if user is None:
        raise HTTPException(404, "not found")
    return UserOut.model_validate(user)


@app.get("/users")
async def list_users(db: Session, limit: Annotated[int, Query(le=100)] = 50) -> UserPage:
    """List users by id."""
    rows = (await db.scalars(select(User).order_by(User.id).limit(limit))).all()
    return UserPage(items=[UserOut.model_validate(r) for r in rows])


@app.post("/users", status_code=201)
async def create_user(body: UserIn, db: Session) -> UserOut:
    """Create a user."""
    user = User(username=body.username, email=body.email)
    db.add(user)
    try:
        await db.commit()
    except IntegrityError:
        raise HTTPException(409, "taken") from None
    return UserOut.model_validate(user)
