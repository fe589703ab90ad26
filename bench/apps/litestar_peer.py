"""The other peer a user would pick: Litestar + SQLAlchemy 2.0 async + asyncpg (uvicorn).

Written as Litestar's docs show it, with the same data and operations as the FastAPI peer
(bench/apps/fastapi_peer.py): a session per request from a dependency, msgspec-encoded
response models, our own table, a 409 from the unique index. No API keys either.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar import Litestar, get, post
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

# The same table mapping, engine and pool as the FastAPI peer: only the framework differs.
from bench.apps.fastapi_peer import User, sessions


@dataclass
class UserIn:
    """A new user."""

    username: str
    email: str


@dataclass
class UserOut:
    """A user as returned."""

    id: int
    username: str
    email: str
    created_at: datetime
    updated_at: datetime


@dataclass
class UserPage:
    """A page of users."""

    items: list[UserOut]


def _out(user: User) -> UserOut:
    return UserOut(user.id, user.username, user.email, user.created_at, user.updated_at)


async def session() -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with sessions() as s:
        yield s


@get("/users/{user_id:int}")
async def get_user(user_id: int, db: AsyncSession) -> UserOut:
    """Get one user."""
    user = await db.get(User, user_id)
    if user is None:
        raise NotFoundException("not found")
    return _out(user)


@get("/users")
async def list_users(db: AsyncSession, limit: Annotated[int, Parameter(le=100)] = 50) -> UserPage:
    """List users by id."""
    rows = (await db.scalars(select(User).order_by(User.id).limit(limit))).all()
    return UserPage(items=[_out(r) for r in rows])


@post("/users")
async def create_user(data: UserIn, db: AsyncSession) -> UserOut:
    """Create a user (201, Litestar's default for POST)."""
    user = User(username=data.username, email=data.email)
    db.add(user)
    try:
        await db.commit()
    except IntegrityError:
        raise HTTPException(status_code=409, detail="taken") from None
    return _out(user)


app = Litestar(
    [get_user, list_users, create_user],
    dependencies={"db": Provide(session)},
    debug=False,
)
