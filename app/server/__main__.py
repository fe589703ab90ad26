"""``python -m app.server``: the production server (see app.server.serve)."""

from app.server.serve import main

main()
