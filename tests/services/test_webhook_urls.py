"""Webhook URLs: public addresses only, whatever form the address takes, unless allowed."""

import ipaddress

import pytest

from app.services import webhook_urls
from app.services.webhook_urls import UnsafeUrlError


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
    ],
)
def test_every_kind_of_non_public_address_is_refused_and_named(address: str, kind: str) -> None:
    with pytest.raises(UnsafeUrlError, match=kind):
        webhook_urls.checked("hooks.example", [ipaddress.ip_address(address)], frozenset())


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    public, private = ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.1")
    with pytest.raises(UnsafeUrlError, match=r"10\.0\.0\.1"):
        webhook_urls.checked("hooks.example", [public, private], frozenset())
    assert webhook_urls.checked("hooks.example", [public, public], frozenset()) == [public]


def test_an_allowed_host_may_resolve_anywhere() -> None:
    assert webhook_urls.resolve("http://localhost:9/hook", frozenset({"localhost"}))
    with pytest.raises(UnsafeUrlError, match="loopback"):
        webhook_urls.resolve("http://localhost:9/hook", frozenset({"other.example"}))
    with pytest.raises(UnsafeUrlError, match="loopback"):
        webhook_urls.resolve("http://127.0.0.1:9/hook", frozenset())


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http:///nohost", "no host"),
        ("https://user:secret@hooks.example/", "user name or password"),
        ("http://hooks.example:99999/", "not a URL"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_urls_that_are_not_webhook_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrlError, match=why) as refused:
        webhook_urls.resolve(url, frozenset())
    assert "secret" not in str(refused.value)


@pytest.mark.asyncio
async def test_the_async_resolve_checks_alike() -> None:
    with pytest.raises(UnsafeUrlError, match="loopback"):
        await webhook_urls.resolve_async("http://127.0.0.1:9/", frozenset())
    assert await webhook_urls.resolve_async("http://127.0.0.1:9/", frozenset({"127.0.0.1"}))
