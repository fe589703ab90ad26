"""Schemathesis set up for this API: emails pydantic accepts, import files, opaque cursors.

Imported by tests/test_contract.py for the in-process run and named by SCHEMATHESIS_HOOKS
for the CLI run (scripts/contract_cli.sh), so both generate and judge alike.

- ``format: email``: schemathesis' own generator draws addresses under reserved names such
  as ``x@y.test``, which pydantic's EmailStr (email-validator) refuses. That is the
  validator's rule, not a server bug, so the generator is replaced, not the API loosened:
  every address it makes of at most EMAIL_MAX characters is one POST /users accepts. It
  also makes addresses of exactly EMAIL_MAX - 1, EMAIL_MAX and EMAIL_MAX + 1 characters,
  which the coverage phase asks for at the ``maxLength`` boundary (the last one only in
  negative cases; ``maxLength`` keeps it out of positive ones). Without them it searches
  for such lengths by rejection, for seconds per schema.
- ``text/csv`` and ``application/x-ndjson`` bodies (POST /users/import): the document can
  only say ``type: string``, and a string is not a file of users, so schemathesis' own
  bodies are all refused with a 400. These make well-formed files of valid rows instead
  (a duplicate among them is the documented 409).
- ``positive_data_acceptance``: a ``cursor`` is opaque; any string up to 512 characters
  fits its schema, yet only one the API made is valid, and the document says an altered
  one is a 400. The built-in check is replaced by one that allows exactly that 400, and
  likewise the 412 of an ``If-Match`` (any string fits its schema; only a current ETag
  matches, and the document says a stale one is a 412), the 422 of an
  ``Idempotency-Key`` the fuzzer already used with another body, and the 422 of a
  ``new_password`` refused by a password rule: the rules (lengths counted after Unicode
  NFC, the blocklist of common passwords) are in the field's description, since no schema
  keyword can say them, and the 422 names the rule. Likewise a webhook ``url`` refused
  as unsafe (422 ``unsafe_url``): whether a URL resolves to public addresses is no schema's
  to say. Likewise a mail link's ``token`` (400): only one the worker issued is valid.
- ``format: uri`` (webhook URLs): http and https URLs to public addresses given as
  numbers, which resolve without DNS and which POST /webhooks accepts.
"""

import csv
import io
import json
import string
from typing import Any

import schemathesis
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis import CheckContext, Response
from schemathesis.checks import positive_data_acceptance

from app.models.user import EMAIL_MAX, USERNAME_MAX
from app.schemas.users import UserCreate
from app.services.mail import InvalidTokenError

# RFC 5322 dot-atom characters (no dot: no leading, trailing or doubled dots to avoid).
_LOCAL_CHARACTERS = string.ascii_lowercase + string.digits + "!#$%&'*+-/=?^_`{|}~"
_LABEL_CHARACTERS = string.ascii_lowercase + string.digits
_TOP_LEVEL_DOMAINS = ("com", "org", "net", "io", "dev")
_LOCAL_MAX = 64
_LABEL_MAX = 63


def accepted_email(value: str) -> bool:
    """Whether POST /users takes it as an email (pydantic EmailStr's rules, EMAIL_MAX)."""
    try:
        UserCreate(username="a", email=value)
    except ValidationError:
        return False
    return True


def _exactly(alphabet: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=size)


def email_of_length(length: int) -> st.SearchStrategy[str]:
    """Addresses of exactly ``length`` characters: ``local@label(.label)*.com``."""
    local = min(_LOCAL_MAX, length - len("@a.com"))
    rest = length - local - len("@") - len(".com")
    sizes = []
    while rest > _LABEL_MAX:
        sizes.append(_LABEL_MAX - 2)
        rest -= _LABEL_MAX - 1
    sizes.append(rest)
    domain = st.tuples(*(_exactly(_LABEL_CHARACTERS, size) for size in sizes)).map(".".join)
    return st.builds("{}@{}.com".format, _exactly(_LOCAL_CHARACTERS, local), domain)


EMAILS: st.SearchStrategy[str] = st.one_of(
    st.builds(
        "{}@{}.{}".format,
        st.text(alphabet=_LOCAL_CHARACTERS, min_size=1, max_size=16),
        st.text(alphabet=_LABEL_CHARACTERS, min_size=1, max_size=16),
        st.sampled_from(_TOP_LEVEL_DOMAINS),
    ),
    st.sampled_from([EMAIL_MAX - 1, EMAIL_MAX, EMAIL_MAX + 1]).flatmap(email_of_length),
).filter(lambda value: len(value) > EMAIL_MAX or accepted_email(value))

schemathesis.openapi.format("email", EMAILS)

USERNAMES: st.SearchStrategy[str] = st.text(
    alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=USERNAME_MAX
)
_ROWS = st.lists(
    st.tuples(USERNAMES, EMAILS.filter(lambda value: len(value) <= EMAIL_MAX)), max_size=20
)


def _csv(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["username", "email"])
    writer.writerows(rows)
    return out.getvalue().encode()


def _ndjson(rows: list[tuple[str, str]]) -> bytes:
    return "".join(
        json.dumps({"username": username, "email": email}) + "\n" for username, email in rows
    ).encode()


schemathesis.openapi.media_type("text/csv", _ROWS.map(_csv))
schemathesis.openapi.media_type("application/x-ndjson", _ROWS.map(_ndjson))


# Public addresses (no name to resolve, so no DNS): what the webhook URL check accepts.
_PUBLIC_HOSTS = ("93.184.215.14", "1.1.1.1", "[2606:4700:4700::1111]")
URIS: st.SearchStrategy[str] = st.builds(
    "{}://{}/{}".format,
    st.sampled_from(["http", "https"]),
    st.sampled_from(_PUBLIC_HOSTS),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~/", max_size=40),
)
schemathesis.openapi.format("uri", URIS)


def _is_refused_cursor(response: Response, case: schemathesis.Case[Any]) -> bool:
    if response.status_code != 400 or "cursor" not in (case.query or {}):  # noqa: PLR2004
        return False
    try:
        detail = response.json().get("detail", "")
    except ValueError:
        return False
    return "cursor" in str(detail).lower()


def _is_refused_header(response: Response, case: schemathesis.Case[Any]) -> bool:
    # Any string fits If-Match's schema, yet only a current ETag matches (else 412); any
    # key fits Idempotency-Key's, yet one used with another body is refused (422).
    headers = {name.lower() for name in case.headers or {}}
    if response.status_code == 412:  # noqa: PLR2004
        return "if-match" in headers
    if response.status_code != 422 or "idempotency-key" not in headers:  # noqa: PLR2004
        return False
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return any(error.get("type") == "idempotency_key_reused" for error in errors)


_PASSWORD_RULES = frozenset({"password_too_short", "password_too_long", "password_common"})


_PASSWORD_FIELDS = ("new_password", "password")


def _is_refused_password(response: Response, case: schemathesis.Case[Any]) -> bool:
    body = case.body
    if response.status_code != 422 or not isinstance(body, dict):  # noqa: PLR2004
        return False
    fields = [["body", field] for field in _PASSWORD_FIELDS if field in body]
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return bool(errors and fields) and all(
        error.get("type") in _PASSWORD_RULES and error.get("loc") in fields for error in errors
    )


def _is_refused_token(response: Response, case: schemathesis.Case[Any]) -> bool:
    # A mail link's token: any string fits its schema, yet only one the worker issued (and
    # not yet used, expired or replaced) is valid; the document says the rest is a 400.
    body = case.body
    if response.status_code != 400 or not isinstance(body, dict) or "token" not in body:  # noqa: PLR2004
        return False
    try:
        detail = response.json().get("detail")
    except ValueError:
        return False
    return bool(detail == InvalidTokenError().detail)


def _is_refused_url(response: Response, case: schemathesis.Case[Any]) -> bool:
    body = case.body
    if response.status_code != 422 or not isinstance(body, dict) or "url" not in body:  # noqa: PLR2004
        return False
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return bool(errors) and all(
        error.get("type") == "unsafe_url" and error.get("loc") == ["body", "url"]
        for error in errors
    )


@schemathesis.check
def positive_data_acceptance_opaque_cursor(
    ctx: CheckContext, response: Response, case: schemathesis.Case[Any]
) -> bool | None:
    """positive_data_acceptance, except that a made-up cursor may be refused with a 400, a
    made-up If-Match with a 412, a reused Idempotency-Key with a 422, a new password that
    breaks a password rule with a 422 naming it, an unsafe webhook URL with a 422, and a
    made-up mail token with the 400 every invalid one gets."""
    if (
        _is_refused_cursor(response, case)
        or _is_refused_header(response, case)
        or _is_refused_password(response, case)
        or _is_refused_url(response, case)
        or _is_refused_token(response, case)
    ):
        return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result
