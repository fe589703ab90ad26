"""Judging rows: each one validated like POST /users, then each staged line once, by SQL."""

from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    ClauseElement,
    Column,
    MetaData,
    Select,
    String,
    Table,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import DropTable
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import DDLCompiler, SQLCompiler

from app.db.types import FoldedString, folded
from app.models import User
from app.models.user import EMAIL_MAX, USERNAME_MAX
from app.schemas.users import UserCreate
from app.services.bulk.report import MAX_REPORTED, ImportReport

TAKEN_MEANWHILE = "a username or email was taken while the import ran"
FIELDS = ("username", "email")
Row = tuple[int, str, str]  # line, username, email

_staging_metadata = MetaData()
staging = Table(
    "user_import_staging",
    _staging_metadata,
    Column("line", BigInteger, nullable=False),
    # Of the users' own types: on MariaDB, compared under the same collation as theirs.
    Column("username", FoldedString(USERNAME_MAX), nullable=False),
    Column("email", FoldedString(EMAIL_MAX), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
# Each staged line judged once (by classify), for the report and for the move alike.
verdict = Table(
    "user_import_verdict",
    _staging_metadata,
    Column("line", BigInteger),
    Column("username", String),
    Column("email", String),
    Column("username_rank", BigInteger),  # 1: the file's first line with this username
    Column("email_rank", BigInteger),
    Column("username_taken", Boolean),  # an existing user has it, whatever the case
    Column("email_taken", Boolean),
    prefixes=["TEMPORARY"],  # made by classify(); dropped as one (see _drop_temporary_table)
)


class _CreateTempTableAs(Executable, ClauseElement):
    """``CREATE TEMPORARY TABLE name AS SELECT ...``; PostgreSQL drops it at commit."""

    inherit_cache = False

    def __init__(self, table: Table, query: Select[Any]) -> None:
        self.table = table
        self.query = query


@compiles(_CreateTempTableAs)
def _compile_create_temp_table_as(
    element: _CreateTempTableAs, compiler: SQLCompiler, **kw: Any
) -> str:
    on_commit = " ON COMMIT DROP" if compiler.dialect.name == "postgresql" else ""
    name = compiler.preparer.format_table(element.table)
    return f"CREATE TEMPORARY TABLE {name}{on_commit} AS {compiler.process(element.query, **kw)}"


@compiles(DropTable, "mysql")
def _drop_temporary_table(element: DropTable, compiler: DDLCompiler, **kw: Any) -> str:
    # MariaDB commits the open transaction on a plain DROP TABLE, even of a temporary
    # table: a rejected import's rows would be kept. DROP TEMPORARY TABLE does not.
    text: str = compiler.visit_drop_table(element, **kw)  # type: ignore[no-untyped-call]
    if "TEMPORARY" in element.element._prefixes:
        text = text.replace("DROP TABLE", "DROP TEMPORARY TABLE", 1)
    return text


def _problem_text(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


def reject(report: ImportReport, line: int, error: ValidationError) -> None:
    report.invalid += 1
    report.note(line, _problem_text(error))


def validated(chunk: list[tuple[int, Any]], report: ImportReport) -> list[Row]:
    """Validate a chunk of parsed records with UserCreate; return the good rows."""
    good = []
    for line, data in chunk:
        try:
            user = UserCreate.model_validate(data)
        except ValidationError as error:
            reject(report, line, error)
        else:
            good.append((line, user.username, user.email))
    return good


def classify() -> Executable:
    """Judge every staged line once: its rank among the file's lines with the same username
    (and email), case-insensitively, and whether an existing user already has either."""
    users = User.__table__

    def rank(name: str) -> Any:
        partition = folded(staging.c[name])
        return func.row_number().over(partition_by=partition, order_by=staging.c.line)

    def taken(name: str) -> Any:
        same = folded(users.c[name]) == folded(staging.c[name])
        return select(users.c.id).where(same).exists()

    query = select(
        staging.c.line,
        staging.c.username,
        staging.c.email,
        rank("username").label("username_rank"),
        rank("email").label("email_rank"),
        taken("username").label("username_taken"),
        taken("email").label("email_taken"),
    )
    return _CreateTempTableAs(verdict, query)


def verdict_problems() -> list[tuple[Any, str]]:
    # What can be wrong with a judged line, and how the report says it; the move takes the
    # lines with none of these, so the two cannot disagree.
    repeats = [
        (verdict.c[f"{name}_rank"] > 1, f"{name} repeats an earlier line of the file")
        for name in FIELDS
    ]
    return repeats + [(verdict.c[f"{name}_taken"], f"{name} already exists") for name in FIELDS]


def duplicate_lines() -> Executable:
    """Lines that repeat an earlier line of the file or an existing user (first 100)."""
    found = union_all(
        *(
            select(verdict.c.line, literal(why).label("why")).where(c)
            for c, why in verdict_problems()
        )
    ).subquery("found")
    return select(found.c.line, found.c.why).order_by(found.c.line).limit(MAX_REPORTED)
