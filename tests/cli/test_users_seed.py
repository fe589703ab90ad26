"""flask --app app users seed: fake users and posts, unique in any case, with progress."""

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app.db.session import db
from app.models import Post, User
from app.schemas.users import UserCreate
from tests.factories import make_user
from tests.helpers import stored_users


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
