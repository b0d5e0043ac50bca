"""Custom domains: name rules, Host normalisation and the DNS TXT check.

An account admin adds a domain and receives a TXT record to publish at
``_synergyhub-challenge.<domain>``; the domain turns active once a lookup
finds the record. The resolver is injected: production uses dnspython
(:class:`DnsPythonResolver`), tests use :class:`DictResolver` and never touch
the network.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Protocol

__all__ = [
    "CHALLENGE_LABEL",
    "DictResolver",
    "DnsLookupError",
    "DnsPythonResolver",
    "TxtResolver",
    "challenge_name",
    "challenge_value",
    "new_token",
    "normalize_domain",
    "normalize_host",
]

CHALLENGE_LABEL = "_synergyhub-challenge"
_CHALLENGE_PREFIX = "synergyhub-verification="
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_HOST_CHARS = re.compile(r"^[a-z0-9.-]{1,253}$")


class DnsLookupError(RuntimeError):
    """The resolver could not answer (timeout, no nameserver); try again later."""


class TxtResolver(Protocol):
    async def txt(self, name: str) -> list[str]:
        """The TXT strings at ``name``; ``[]`` when the name or record does not exist."""
        ...


class DictResolver:
    """A resolver backed by a dict ``{name: [txt, ...]}`` (tests, air-gapped set-ups)."""

    def __init__(self, records: Mapping[str, Iterable[str]] | None = None) -> None:
        self.records: dict[str, list[str]] = {
            name.lower().rstrip("."): list(values) for name, values in (records or {}).items()
        }

    def set(self, name: str, values: Iterable[str]) -> None:
        self.records[name.lower().rstrip(".")] = list(values)

    async def txt(self, name: str) -> list[str]:
        return list(self.records.get(name.lower().rstrip("."), []))


class DnsPythonResolver:
    """The production resolver: dnspython's async stub resolver with a time limit."""

    def __init__(self, *, lifetime: float = 5.0, nameservers: list[str] | None = None,
                 port: int = 53) -> None:
        """``nameservers`` replaces the system's (/etc/resolv.conf) when given."""
        self.lifetime = lifetime
        self.nameservers = nameservers
        self.port = port

    async def txt(self, name: str) -> list[str]:
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        resolver = dns.asyncresolver.Resolver(configure=self.nameservers is None)
        if self.nameservers is not None:
            resolver.nameservers = list(self.nameservers)
            resolver.port = self.port
        resolver.lifetime = self.lifetime
        try:
            answer = await resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise DnsLookupError(f"DNS lookup of {name} failed: {type(exc).__name__}") from None
        values: list[str] = []
        for record in answer:
            strings = getattr(record, "strings", ())
            values.append(b"".join(strings).decode("utf-8", "replace"))
        return values


def normalize_host(host: str) -> str:
    """The hostname of a ``Host`` header: lower-case, no port, no trailing dot.

    Returns ``""`` for anything that is not a plain DNS name or IP literal.
    """
    value = (host or "").strip().lower()
    if value.startswith("["):  # IPv6 literal
        end = value.find("]")
        return value[: end + 1] if end > 0 else ""
    value = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    value = value.rstrip(".")
    return value if _HOST_CHARS.match(value) else ""


def normalize_domain(value: str, *, reserved: Iterable[str] = ()) -> str:
    """Validate a custom domain a tenant may claim; raise ``ValueError`` with the reason.

    Lower-cased and IDNA-encoded; at least two labels; no IP addresses, no
    platform hosts or Solution domains (nor their subdomains).
    """
    text = (value or "").strip().rstrip(".").lower()
    if not text or len(text) > 253:
        raise ValueError("a domain is 1-253 characters")
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValueError("an IP address cannot be a custom domain")
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a valid domain name") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            "a domain needs at least two labels of letters, digits and hyphens "
            "(e.g. www.example.com)"
        )
    if labels[-1].isdigit():
        raise ValueError("the top-level label of a domain cannot be numeric")
    for blocked in reserved:
        blocked = blocked.lower().rstrip(".")
        if blocked and (ascii_name == blocked or ascii_name.endswith("." + blocked)):
            raise ValueError("this domain belongs to the platform and cannot be claimed")
    return ascii_name


def new_token() -> str:
    return secrets.token_urlsafe(24)


def challenge_name(domain: str) -> str:
    return f"{CHALLENGE_LABEL}.{domain}"


def challenge_value(token: str) -> str:
    return f"{_CHALLENGE_PREFIX}{token}"
