"""Email addresses, checked as pydantic's EmailStr checks them, at bulk-import speed.

email-validator costs ~55 us an address, mostly on the domain (IDNA, special-use names).
An import of a million rows sees few distinct domains, so each domain is checked once by
email-validator itself; a plain ASCII local part is checked by its dot-atom grammar, and
anything else goes through email-validator whole. Same verdicts, same normalisation.
"""

import functools
import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

EMAIL_MAX = 254
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")


def _full_check(address: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        msg = f"value is not a valid email address: {error}"
        raise ValueError(msg) from None


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str:
    # A one-letter local part is always valid, so this verdict is the domain's alone.
    return _full_check(f"a@{domain}").rpartition("@")[2]


def check_email(address: str) -> str:
    """Return the normalised address, or raise ValueError as EmailStr would."""
    local, at, domain = address.rpartition("@")
    if at and len(address) <= EMAIL_MAX and len(local) <= 64 and _DOT_ATOM.fullmatch(local):  # noqa: PLR2004
        return f"{local}@{_checked_domain(domain)}"
    return _full_check(address)


Email = Annotated[
    str,
    StringConstraints(max_length=EMAIL_MAX),
    AfterValidator(check_email),
    Field(json_schema_extra={"format": "email"}),
]
