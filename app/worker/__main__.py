"""``python -m app.worker``."""

from app.worker.run import main

main()
