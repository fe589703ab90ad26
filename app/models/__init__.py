"""All models, so one import registers every table on the metadata."""

from app.models.user import User

__all__ = ["User"]
