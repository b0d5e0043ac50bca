"""Pure rules of the white-label feature (no I/O): domains, hosts, appearance, page parts."""

from __future__ import annotations

import pytest

from core.kernel.cache import TTLCache
from core.whitelabel.branding import BrandingSettings, resolve_appearance
from core.whitelabel.cache import RenderedPage
from core.whitelabel.domains import DictResolver, normalize_domain, normalize_host
from core.whitelabel.themes import load_theme_packs


@pytest.mark.parametrize(("raw", "expected"), [
    ("Example.COM", "example.com"),
    ("www.example.com.", "www.example.com"),
    ("bücher.example", "xn--bcher-kva.example"),
    (" shop.example.co.uk ", "shop.example.co.uk"),
])
def test_normalize_domain(raw: str, expected: str) -> None:
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "localhost", "example", "1.2.3.4", "[::1]", "-a.example.com", "a-.example.com",
    "a..example.com", "a b.example.com", "a_b.example.com", "example.123", "x" * 64 + ".com",
    "evil.com/path", "evil.com:443",
])
def test_normalize_domain_refuses(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_domain(raw)


def test_reserved_domains_and_their_subdomains() -> None:
    reserved = ["platform.test", "medical.example.net"]
    for raw in ("platform.test", "a.platform.test", "medical.example.net", "x.medical.example.net"):
        with pytest.raises(ValueError):
            normalize_domain(raw, reserved=reserved)
    assert normalize_domain("notmedical.example.net", reserved=reserved)


@pytest.mark.parametrize(("host", "expected"), [
    ("Example.com:8443", "example.com"), ("example.com.", "example.com"),
    ("127.0.0.1:5000", "127.0.0.1"), ("[::1]:80", "[::1]"), ("", ""), ("a b", ""),
    ("evil.com/x", ""), ("::1", ""),
])
def test_normalize_host(host: str, expected: str) -> None:
    assert normalize_host(host) == expected


async def test_dict_resolver() -> None:
    resolver = DictResolver({"_x.Example.com.": ["a"]})
    assert await resolver.txt("_x.example.com") == ["a"]
    assert await resolver.txt("nothing.example.com") == []


def test_resolve_appearance_applies_overrides_and_reports_contrast() -> None:
    pack = load_theme_packs()["corporate"]
    values = BrandingSettings(text_color="#777777", font="monospace").model_dump()
    appearance = resolve_appearance(pack, values, account_name="Acme")
    assert appearance.branding.product_name == "Acme"
    assert appearance.tokens.colors.text == "#777777"
    assert appearance.tokens.typography.font_family == "monospace"
    assert "text on surface" in {f.pair for f in appearance.contrast_failures}
    assert appearance.frame_ancestors_csp == "'none'"


def test_rendered_page_takes_a_fresh_nonce() -> None:
    page = RenderedPage.from_html('<style nonce="PH">a</style><p>PH-free</p>', "PH",
                                  frame_ancestors="'none'", version=1)
    assert page.body("abc") == b'<style nonce="abc">a</style><p>abc-free</p>'


def test_ttl_cache_expires() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(1.0, clock=lambda: now[0])
    cache.put("a", 1)
    assert cache.get("a") == 1
    now[0] = 1.5
    from core.kernel.cache import MISSING
    assert cache.get("a") is MISSING


class _TinyDns:
    """A loopback UDP DNS server answering TXT for one name (NXDOMAIN otherwise)."""

    def __init__(self, name: str, values: list[str]) -> None:
        import socket

        self.name, self.values = name, values
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True

    def serve(self) -> None:
        import dns.message
        import dns.rcode
        import dns.rrset

        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            if question.name.to_text().rstrip(".") == self.name:
                reply.answer.append(dns.rrset.from_text_list(
                    question.name, 60, "IN", "TXT", [f'"{v}"' for v in self.values]))
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), peer)


async def test_dnspython_resolver_against_a_loopback_server() -> None:
    import threading

    from core.whitelabel.domains import DnsLookupError, DnsPythonResolver

    server = _TinyDns("_synergyhub-challenge.shop.example", ["synergyhub-verification=abc",
                                                              "other"])
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        resolver = DnsPythonResolver(nameservers=["127.0.0.1"], port=server.port, lifetime=2)
        assert sorted(await resolver.txt("_synergyhub-challenge.shop.example")) == [
            "other", "synergyhub-verification=abc"]
        assert await resolver.txt("nothing.example") == []
    finally:
        server.running = False
        thread.join()
        server.sock.close()
    silent = DnsPythonResolver(nameservers=["127.0.0.1"], port=server.port, lifetime=0.3)
    with pytest.raises(DnsLookupError):
        await silent.txt("_synergyhub-challenge.shop.example")
