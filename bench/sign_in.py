"""Sign-in refusals side by side: unknown user, wrong password, no password, deactivated.

Issue 34, point 3: the four get the same 401 body and must take the same time within noise
(a dummy Argon2 hash is verified when there is no stored one). Each case is signed in
``--rounds`` times, interleaved (a shared machine's slow second hits all four alike),
through the app in process on the embedded SQLite database of a temporary folder; the
figures are wall-clock medians and their ratio to the wrong password's.
Usage: .venv/bin/python -m bench.sign_in [--rounds 200]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import update

from app import create_app
from app.config import Settings
from app.db import migrations
from app.db.session import db
from app.models import User
from app.schemas.users import UserCreate
from app.services import users
from app.services.passwords import hash_password

PASSWORD = "correct horse battery staple"
CASES = {
    "unknown user": ("nobody", PASSWORD),
    "wrong password": ("ann", "wrong horse battery staple"),
    "no password": ("bob", PASSWORD),
    "deactivated": ("cy", PASSWORD),
}


def main() -> None:
    """Print the four cases' medians side by side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        # No limits: the bench signs the same names in hundreds of times a minute.
        settings = Settings(
            INSTANCE_PATH=Path(folder), RATE_LIMIT="", SIGN_IN_LIMIT="", SIGN_IN_ADDRESS_LIMIT=""
        )
        app = create_app(settings)
        with app.app_context():
            migrations.migrate(db.engine)
            for name in ("ann", "bob", "cy"):
                users.create_user(UserCreate(username=name, email=f"{name}@example.com"))
            hashed = hash_password(PASSWORD)
            db.session.execute(
                update(User).where(User.username.in_(["ann", "cy"])).values(password_hash=hashed)
            )
            db.session.execute(update(User).where(User.username == "cy").values(active=False))
            db.session.commit()
        client = app.test_client()
        times: dict[str, list[float]] = {case: [] for case in CASES}
        bodies: dict[str, bytes] = {}
        for _ in range(rounds):
            for case, (username, password) in CASES.items():
                started = time.perf_counter()
                response = client.post(
                    "/auth/sessions", json={"username": username, "password": password}
                )
                times[case].append(time.perf_counter() - started)
                assert response.status_code == 401, response.get_data(as_text=True)
                bodies[case] = response.get_data()
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
    same = len(set(bodies.values())) == 1
    reference = statistics.median(times["wrong password"])
    print(f"sign-in refusals, {rounds} rounds each, median wall-clock ms (ratio to wrong password)")
    print("  ".join(f"{case:>16}" for case in CASES))
    print(
        "  ".join(
            f"{statistics.median(t) * 1000:9.2f} ({statistics.median(t) / reference:.2f})"
            for t in times.values()
        )
    )
    print(f"the same 401 body for all four: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
