"""The request pipeline: every hook around the views (pipeline.py lists them in order),
authentication, rate limits, body checks, browsers' needs, and the problem+json handler."""
