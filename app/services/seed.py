"""Fake users and posts for demos (``flask --app app users seed``). Services flush, never
commit."""

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, func, insert, select

from app.config import current_settings
from app.db.deadlines import bulk_deadlines, extend
from app.db.session import db
from app.db.types import folded
from app.models import Post, User

if TYPE_CHECKING:
    from faker import Faker

# Rows a round trip: one multi-row INSERT of users, one of their posts, one look-up of names.
CHUNK_USERS = 1000
# Faker spends ~60 us on a user name; names are a pooled base and a number, and titles and
# bodies are drawn from pools, so a million rows cost seconds of Python, not minutes.
POOL = 1000
DOMAINS = ("example.com", "example.org", "example.net")  # reserved for examples (RFC 2606)

_users = cast(Table, User.__table__)
_posts = cast(Table, Post.__table__)


@dataclass(frozen=True)
class SeedReport:
    """What a seed wrote."""

    users: int
    posts: int


class _Names:
    """Usernames and emails unique in any letter case: against each other and the database."""

    def __init__(self, fake: "Faker", rng: random.Random, count: int) -> None:
        self._rng = rng
        bases = {re.sub(r"[^a-z0-9_]", "", fake.user_name().lower()) for _ in range(POOL)}
        self._bases = sorted(base for base in bases if base) or ["user"]
        # Numbers ten times as many as the names wanted: few draws are ever repeats.
        self._numbers = max(100, 10 * count)
        self._drawn: set[str] = set()

    def _draw(self) -> str:
        while True:
            name = f"{self._rng.choice(self._bases)}{self._rng.randrange(self._numbers)}"
            if name not in self._drawn:
                self._drawn.add(name)
                return name

    def fresh(self, n: int) -> list[dict[str, Any]]:
        """Return n users whose username and email no stored user has, in any case."""
        rows: list[dict[str, Any]] = []
        while len(rows) < n:
            wanted = [self._draw() for _ in range(n - len(rows))]
            emails = {name: f"{name}@{self._rng.choice(DOMAINS)}" for name in wanted}
            # A look-up for a pleasant result; the unique indexes stay the guard (a writer
            # taking a name meanwhile makes the insert fail, and nothing is written).
            taken = set(
                db.session.execute(
                    select(func.lower(_users.c.username)).where(
                        folded(_users.c.username).in_(wanted)
                    )
                ).scalars()
            )
            taken |= {
                email.split("@", 1)[0]
                for email in db.session.execute(
                    select(func.lower(_users.c.email)).where(
                        folded(_users.c.email).in_(list(emails.values()))
                    )
                ).scalars()
            }
            rows += [
                {"username": name, "email": emails[name]} for name in wanted if name not in taken
            ]
        return rows


def seed_users(
    count: int,
    posts_per_user: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    seed: int | None = None,
) -> SeedReport:
    """Add fake users with their posts; ``progress(users, rows)`` hears of each chunk."""
    from faker import Faker  # noqa: PLC0415 - only this command needs it, not the web app

    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)  # noqa: S311 - fake data, not secrets
    names = _Names(fake, rng, count)
    titles = [fake.sentence(nb_words=6).rstrip(".") for _ in range(POOL)]
    bodies = [fake.paragraph(nb_sentences=4) for _ in range(POOL)]
    # One transaction of minutes for a large count (the CLI commits it at the end): bulk
    # deadlines, as an import's, not a request's, which cut a seed of 100,000 users at 6 s.
    settings = current_settings()
    connection = db.session.connection()
    bulk_deadlines(connection, settings)
    users = posts = 0
    while users < count:
        # Each chunk done shows the server still answers: the client's deadline (for one
        # that stops answering) restarts, so no count is too large for it.
        extend(connection, settings.DB_BULK_TIMEOUT)
        rows = names.fresh(min(CHUNK_USERS, count - users))
        ids = db.session.execute(
            insert(_users).returning(_users.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        post_rows = [
            {"author_id": author, "title": rng.choice(titles), "body": rng.choice(bodies)}
            for author in ids
            for _ in range(posts_per_user)
        ]
        if post_rows:
            db.session.execute(insert(_posts), post_rows)
        users += len(rows)
        posts += len(post_rows)
        if progress is not None:
            progress(len(rows), len(rows) + len(post_rows))
    return SeedReport(users, posts)
