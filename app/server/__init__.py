"""The serving runtime: granian's entry (serve), the ASGI-to-WSGI bridge, the long-lived loops.

It imports nothing of the database layer or Flask-SQLAlchemy: the app it serves is built in
each worker by ``serve.asgi_app``. ``python -m app.server`` runs ``serve.main``.
"""
