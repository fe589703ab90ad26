from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="SignupCreate")


@_attrs_define
class SignupCreate:
    """Body of POST /auth/signup: a new account, inactive until its address confirms.

    Attributes:
        email (str):
        password (str): 8 to 128 characters, counted after Unicode NFC; not one of the common passwords the server
            ships. A refused one is a 422 whose error type names the rule: password_too_short, password_too_long or
            password_common.
        username (str):
    """

    email: str
    password: str
    username: str

    def to_dict(self) -> dict[str, Any]:
        email = self.email

        password = self.password

        username = self.username

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "email": email,
                "password": password,
                "username": username,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        email = d.pop("email")

        password = d.pop("password")

        username = d.pop("username")

        signup_create = cls(
            email=email,
            password=password,
            username=username,
        )

        return signup_create
