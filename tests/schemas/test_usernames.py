"""Usernames are stored and compared in NFC, and hold no invisible character; emails alike."""

import re
import sys
import unicodedata

import pytest
from pydantic import ValidationError

from app.schemas.common import INVISIBLE_RANGES, NAME_PATTERN, NAME_RULE
from app.schemas.users import UserCreate, UserListQuery, UserUpdate

NFD_JOSE = "Jose\u0301"
NFC_JOSE = "Jos\u00e9"
HANGUL_FILLERS = {0x115F, 0x1160, 0x3164, 0xFFA0}
INVISIBLE = {
    "zero width space": "\u200b",
    "zero width non-joiner": "\u200c",
    "zero width joiner": "\u200d",
    "left-to-right mark": "\u200e",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "arabic letter mark": "\u061c",
    "mongolian vowel separator": "\u180e",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "next line (C1 control)": "\u0085",
    "tab": "\t",
    "delete": "\x7f",
    "tag letter A": "\U000e0041",
    "private use": "\ue000",
    "supplementary private use": "\U00100000",
    "hangul filler": "\u3164",
}
LOOK_ALIKES_AND_SCRIPTS = [
    "\uff4a\uff4f\uff53\uff45",  # full-width "jose": NFKC would fold it, NFC keeps it
    "\u0430dmin",  # Cyrillic a, then Latin: a look-alike of "admin"
    "\u041c\u0430\u0440\u0438\u044f-Ana",  # Cyrillic and Latin in one name
    "\u5c71\u7530\u3055\u304f\u3089",  # kanji and hiragana
    "\u05d3\u05d5\u05d3",  # Hebrew, right to left without any override
    "\u0645\u062d\u0645\u062f",  # Arabic
    "Zo\u00eb \U0001f600",  # a space inside, an emoji
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u3000 x",  # an ideographic space inside
]


def _username(value: str) -> str:
    return UserCreate(username=value, email="a@example.com").username


def _computed_invisible_ranges() -> list[tuple[int, int]]:
    wanted = {"Cc", "Cf", "Co", "Zl", "Zp"}
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in wanted or code in HANGUL_FILLERS:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return ranges


def test_the_invisible_ranges_are_this_pythons_unicode_categories() -> None:
    # A newer Unicode (a newer Python) adds format characters: the ranges must follow.
    assert list(INVISIBLE_RANGES) == _computed_invisible_ranges(), unicodedata.unidata_version


@pytest.mark.parametrize("schema", ["create", "update"])
def test_a_decomposed_username_is_stored_composed(schema: str) -> None:
    if schema == "create":
        username = _username(NFD_JOSE)
    else:
        username = UserUpdate(username=NFD_JOSE).username or ""
    assert username == NFC_JOSE
    assert unicodedata.is_normalized("NFC", username)


def test_the_username_and_email_filters_compare_in_nfc() -> None:
    query = UserListQuery(username=NFD_JOSE, email="jose\u0301@example.com")
    assert query.username == NFC_JOSE
    assert query.email == "jos\u00e9@example.com"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        # U+0958 is excluded from composition: NFC writes it as two code points.
        ("\u0958" * 40, "\u0915\u093c" * 40),
        ("\u0958" * 41, None),
        # 80 code points as sent, 40 in NFC; 82 as sent is too long, as the document says.
        ("e\u0301" * 40, "\u00e9" * 40),
        ("e\u0301" * 41, None),
    ],
)
def test_a_username_fits_the_limit_as_sent_and_in_nfc(sent: str, stored: str | None) -> None:
    if stored is not None:
        assert _username(sent) == stored
        return
    with pytest.raises(ValidationError) as caught:
        _username(sent)
    assert [e["type"] for e in caught.value.errors()] == ["string_too_long"]


@pytest.mark.parametrize("where", ["start", "middle", "end", "alone"])
@pytest.mark.parametrize("character", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_an_invisible_character_anywhere_is_refused(character: str, where: str) -> None:
    value = {
        "start": f"{character}bob",
        "middle": f"b{character}ob",
        "end": f"bob{character}",
        "alone": character,
    }[where]
    with pytest.raises(ValidationError) as caught:
        _username(value)
    errors = caught.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(("username",), "string_pattern_mismatch")]
    # Said in words: the pattern holds the very characters it refuses.
    assert errors[0]["msg"] == NAME_RULE


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        _username("a\ud800b")
    assert [e["type"] for e in caught.value.errors()] == ["string_unicode"]


@pytest.mark.parametrize("name", LOOK_ALIKES_AND_SCRIPTS)
def test_look_alikes_and_mixed_scripts_are_allowed_as_typed(name: str) -> None:
    # The policy: NFC only; no folding of compatibility forms, no script check.
    assert _username(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize(
    "value",
    [*INVISIBLE.values(), *LOOK_ALIKES_AND_SCRIPTS, "bob", " bob", "bob ", "a b", "\u00a0a"],
)
def test_pythons_re_reads_the_documented_pattern_as_pydantic_does(value: str) -> None:
    # The OpenAPI document carries NAME_PATTERN; Python tools (schemathesis) read it with re.
    value = f"x{value}x" if len(value) == 1 else value
    try:
        _username(value)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert (re.fullmatch(NAME_PATTERN, value) is not None) is accepted


@pytest.mark.parametrize(
    "address",
    [
        "a\u200bb@example.com",
        "ab@exa\u200bmple.com",
        "\ufeffab@example.com",
        "ab\u202e@example.com",
        "a\u2028b@example.com",
        "a\u2029b@example.com",
        "a\u00adb@example.com",
        "ab@example.com\u2060",
    ],
)
def test_an_email_with_an_invisible_character_is_refused(address: str) -> None:
    with pytest.raises(ValidationError) as caught:
        UserCreate(username="bob", email=address)
    assert [e["loc"] for e in caught.value.errors()] == [("email",)]


def test_a_decomposed_email_is_stored_composed() -> None:
    assert UserCreate(username="bob", email="jose\u0301@example.com").email == (
        "jos\u00e9@example.com"
    )
