"""Where a webhook may be sent: public addresses only, unless WEBHOOK_ALLOWED_HOSTS says so.

Checked when an endpoint is registered or its URL changed, and again before each delivery,
since what a name resolves to can change in between (DNS rebinding). A delivery connects to
an address this check returned, never resolving the name a second time (OWASP's SSRF
prevention cheat sheet: validate the resolved address, and use that address).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
# Cloud metadata services not already link-local (AWS's IPv6 one is in fd00::/8, Alibaba's
# is 100.100.100.200, in shared address space): named, so the reason says what they are.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class UnsafeUrlError(ValueError):
    """A webhook URL that may not be used, and why (safe to show to whoever registered it)."""


def parse(url: str) -> SplitResult:
    """The URL's parts, if it is one a webhook may have: http or https, a host, no
    credentials (they would be logged and shown); else UnsafeUrlError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise UnsafeUrlError(f"not a URL: {error}") from None
    if parts.scheme not in SCHEMES:
        raise UnsafeUrlError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise UnsafeUrlError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("the URL may not carry a user name or password")
    return parts


def port_of(parts: SplitResult) -> int:
    """The URL's port, or its scheme's."""
    return parts.port or (443 if parts.scheme == "https" else 80)


def why_unsafe(address: Address) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA:
        return "a cloud metadata address"
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return f"a {kind} address"
    return None if address.is_global else "not a public address"


def checked(
    host: str, addresses: Iterable[Address], allowed_hosts: frozenset[str]
) -> list[Address]:
    """The addresses, in order and without repeats, if every one may be sent to."""
    found = list(dict.fromkeys(addresses))
    if not found:
        raise UnsafeUrlError(f"{host} resolves to no address")
    if host.lower() in allowed_hosts:
        return found
    for address in found:
        reason = why_unsafe(address)
        if reason is not None:
            raise UnsafeUrlError(
                f"{host} resolves to {address}, {reason}; "
                "WEBHOOK_ALLOWED_HOSTS must name the host to allow it"
            )
    return found


def _addresses(infos: Iterable[tuple[object, ...]]) -> list[Address]:
    # getaddrinfo's sockaddr: (host, port) or (host, port, flow, scope); drop any %scope.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]  # type: ignore[index]


def resolve(url: str, allowed_hosts: frozenset[str]) -> list[Address]:
    """The addresses a delivery to ``url`` may connect to; UnsafeUrlError if there are none, or
    if any is not public (a name with one private address is refused whole)."""
    parts = parse(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, port_of(parts), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeUrlError(f"{host} does not resolve: {error}") from None
    return checked(host, _addresses(infos), allowed_hosts)


async def resolve_async(url: str, allowed_hosts: frozenset[str]) -> list[Address]:
    """``resolve`` on the running loop (its getaddrinfo runs in the loop's executor)."""
    parts = parse(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port_of(parts), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as error:
        raise UnsafeUrlError(f"{host} does not resolve: {error}") from None
    return checked(host, _addresses(infos), allowed_hosts)
