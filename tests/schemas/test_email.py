"""The fast email check gives email-validator's verdict and normalisation."""

import pytest
from email_validator import EmailNotValidError, validate_email

from app.schemas.email import check_email

ADDRESSES = [
    "david@example.com",
    "David.Chen+tag@Example.COM",
    "a@b.co",
    "o'brien@example.org",
    "x@localhost",
    "x@example.test",
    "x@example.local",
    "x@sub.example.invalid",
    "x@123.45",
    "x@[127.0.0.1]",
    "x@-bad.example.com",
    "x@bad-.example.com",
    "x@exa_mple.com",
    "x@example",
    "x@.example.com",
    "x@example..com",
    ".x@example.com",
    "x.@example.com",
    "x..y@example.com",
    '"quoted local"@example.com',
    "ünicode@example.com",
    "x@bücher.example",
    "x@xn--bcher-kva.example",
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "x@" + "a" * 63 + ".com",
    "x@" + "a" * 64 + ".com",
    "x@" + ".".join(["abcdefghi"] * 25) + ".com",
    "no-at-sign.example.com",
    "two@@example.com",
    "sp ace@example.com",
    "x@exam ple.com",
    "",
    "@example.com",
    "x@",
    "x@EXAMPLE.COM",
]


def _reference(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@pytest.mark.parametrize("address", ADDRESSES)
def test_check_email_agrees_with_email_validator(address: str) -> None:
    expected = _reference(address)
    if expected is None:
        with pytest.raises(ValueError, match="not a valid email address"):
            check_email(address)
    else:
        assert check_email(address) == expected
