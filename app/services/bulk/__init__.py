"""Bulk import and export of users (see transfer for how an import runs)."""

from app.services.bulk.reading import MalformedFileError
from app.services.bulk.report import ImportReport
from app.services.bulk.transfer import (
    MIMETYPES,
    Format,
    ImportConflictError,
    ImportRejectedError,
    Mode,
    database_answers,
    export_users,
    import_users,
)

__all__ = [
    "MIMETYPES",
    "Format",
    "ImportConflictError",
    "ImportRejectedError",
    "ImportReport",
    "MalformedFileError",
    "Mode",
    "database_answers",
    "export_users",
    "import_users",
]
