"""flask --app app users seed: fake users and posts, unique in any case, with progress, under
bulk deadlines."""

import time

import pytest
from flask import Flask
from sqlalchemy import func, select, text, update

from app.config import current_settings
from app.db.session import db
from app.models import Post, User
from app.schemas.users import UserCreate
from app.services import seed
from tests.factories import make_user
from tests.helpers import app_with, stored_users


def _post_counts(app: Flask) -> dict[int, int]:
    with app.app_context():
        rows = db.session.execute(select(Post.author_id, func.count()).group_by(Post.author_id))
        return dict(rows.all())


def test_seed_adds_valid_users_with_their_posts_and_a_summary(app: Flask) -> None:
    make_user(app, username="already", email="already@example.com")
    result = app.test_cli_runner().invoke(
        args=["users", "seed", "--count", "1500", "--posts-per-user", "2"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith("Seeded 1,500 users and 3,000 posts in ")
    users = stored_users(app)
    assert len(users) == 1501
    for username, email in users[1:]:
        UserCreate(username=username, email=email)  # what POST /users would take
    with app.app_context():
        new_ids = set(
            db.session.execute(select(User.id).where(User.username != "already")).scalars()
        )
    counts = _post_counts(app)
    assert counts.keys() <= new_ids
    assert list(counts.values()) == [2] * 1500


def test_seed_again_never_takes_a_name_or_email_in_any_case(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["users", "seed", "--count", "300", "--seed", "7"])
    assert first.exit_code == 0, first.output
    # The same seed draws the same names again: stored in capitals now, they are all taken.
    with app.app_context():
        db.session.execute(
            update(User).values(username=func.upper(User.username), email=func.upper(User.email))
        )
        db.session.commit()
    again = runner.invoke(args=["users", "seed", "--count", "300", "--seed", "7"])
    assert again.exit_code == 0, again.output
    users = stored_users(app)
    assert len(users) == 600
    assert len({name.lower() for name, _ in users}) == 600
    assert len({email.lower() for _, email in users}) == 600


def test_seed_reports_progress_off_a_terminal(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.cli.common.PROGRESS_EVERY", 0.0)
    monkeypatch.setattr("app.services.seed.CHUNK_USERS", 4)
    result = app.test_cli_runner().invoke(
        args=["users", "seed", "--count", "10", "--posts-per-user", "0"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "Seeding"
    progress = [line for line in lines if line.startswith("Seeding: ")]
    assert [line.split()[1] for line in progress] == ["4", "8", "10"]
    assert all("s left" in line for line in progress)
    assert lines[-1].startswith("Seeded 10 users and 0 posts in ")
    assert _post_counts(app) == {}


def test_seed_takes_a_positive_count(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["users", "seed", "--count", "0"])
    assert result.exit_code == 2
    assert "--count" in result.stderr
    assert stored_users(app) == []


# Request deadlines far shorter than the seed's work: a statement, an idle transaction, and the
# client's deadline on a checked-out connection (the statement timeout and a second's grace).
SHORT = 0.2
CHUNKS = 3
# Longer than a chunk of the seed below, shorter than all of it: the client's deadline of
# bulk work restarts with each chunk done.
BULK = 1.5


def _slow_statement(seconds: float) -> None:
    """A statement of the seed's own session that lasts this long, on its database server
    (SQLite has no server and no deadlines: the time passes all the same)."""
    backend = current_settings().backend
    if backend == "postgresql":
        db.session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
    elif backend == "mysql":
        db.session.execute(text("SELECT SLEEP(:s)"), {"s": seconds})
    else:
        time.sleep(seconds)


def test_seed_is_not_cut_by_request_deadlines(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.services.seed.CHUNK_USERS", 10)
    fresh = seed._Names.fresh

    def slowly(names: seed._Names, n: int) -> list[dict[str, object]]:
        # Each chunk: a statement longer than the statement timeout, then the transaction
        # idle longer than its timeout; all of it longer than the client's deadline.
        _slow_statement(SHORT * 2)
        time.sleep(SHORT * 2)
        return fresh(names, n)

    monkeypatch.setattr(seed._Names, "fresh", slowly)
    deadlines = {
        "DB_STATEMENT_TIMEOUT": SHORT,
        "DB_IDLE_IN_TRANSACTION_TIMEOUT": SHORT,
        "DB_BULK_TIMEOUT": BULK,
    }
    with app_with(app, **deadlines) as short:
        started = time.monotonic()
        result = short.test_cli_runner().invoke(
            args=["users", "seed", "--count", str(10 * CHUNKS), "--posts-per-user", "1"]
        )
        took = time.monotonic() - started

    assert result.exit_code == 0, (result.output, result.exception)
    assert took > BULK + 0.5  # longer than the client's deadlines, of request or bulk work
    assert len(stored_users(app)) == 10 * CHUNKS
    assert sum(_post_counts(app).values()) == 10 * CHUNKS
