"""The guard on every outbound HTTP call Stepline makes on a user's behalf (SSRF protection).

A workflow definition is written by an admin, but its placeholders are filled from execution
input that anyone who can start a run (or sign a webhook) controls. Two rules keep such calls
from reaching what only the server can reach (the instance metadata service at
169.254.169.254, the local emulator, a private VPC address):

1. **Static:** the scheme, host and port of an outbound URL are literal in the definition:
   no ``{{ }}`` placeholder before the path (``url_template_problem``, used by definition
   validation for every outbound URL field).
2. **At connect time:** the host is resolved once and every address it resolves to is
   checked; the connection goes to that checked address (so a second DNS answer cannot swap
   in another one: "DNS rebinding"). Loopback, link-local (the metadata service), private,
   shared (100.64/10), multicast, unspecified and reserved addresses are refused, and an
   IPv4-mapped IPv6 address is judged by the IPv4 address it carries. Odd spellings of an
   address (``0x7f000001``, ``2130706433``, ``017700000001``) are resolved by the same
   ``getaddrinfo`` the socket would use, so they are judged as what they really are.

Policy, read from the environment at each call:

- ``STEPLINE_OUTBOUND_ALLOW``: comma-separated host names (exact, case-insensitive; a leading
  dot as in ``.corp.example`` matches every sub-domain) or CIDRs (``10.1.0.0/16``) that are
  always allowed: the private services a deployment really needs.
- ``STEPLINE_OUTBOUND_ALLOW_PRIVATE=1``: loopback and private addresses are allowed (local
  mode's ``make run`` and the test suite set it: calling local services is the point of local
  mode). Link-local (the metadata service), multicast, unspecified and reserved addresses stay
  refused even then, unless allow-listed by CIDR. A deployed stage does not set it.

Redirects are never followed (a 3xx comes back as ``HTTPError``), so an allowed host cannot
bounce a call to a refused one, and environment proxies are ignored so the address checked is
the address connected to.

The policy is read at each call, but the opener built for a policy is kept (one per distinct
policy: its handlers hold no per-request state), and so is the TLS context of https calls:
Python builds a default context per connection otherwise, loading the system's CA bundle
each time (about 30 ms of CPU, which a Lambda below 1,769 MB bills several times over). The
kept context verifies exactly as the default one: same CA bundle, hostname check, ALPN.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import re
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ALLOW_ENV",
    "ALLOW_PRIVATE_ENV",
    "OutboundBlocked",
    "OutboundPolicy",
    "address_problem",
    "open_url",
    "url_template_problem",
]

ALLOW_ENV = "STEPLINE_OUTBOUND_ALLOW"
ALLOW_PRIVATE_ENV = "STEPLINE_OUTBOUND_ALLOW_PRIVATE"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What local mode may reach with STEPLINE_OUTBOUND_ALLOW_PRIVATE: RFC 1918, carrier-grade NAT
# (100.64.0.0/10) and IPv6 unique-local addresses. NAT64 (64:ff9b::/96) embeds an IPv4
# address that a gateway will reach, so it is judged by that address.
_PRIVATE = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9._~-]+$")


class OutboundBlocked(urllib.error.URLError):
    """An outbound call refused by the guard; the message names the host and why."""

    def __init__(self, host: str, why: str) -> None:
        self.host = host
        self.why = why
        super().__init__(f"outbound call to {host} refused: {why}")

    def __str__(self) -> str:
        return str(self.reason)


@dataclass(frozen=True)
class OutboundPolicy:
    """What the guard lets through: allow-listed names and networks, and private addresses."""

    allow_hosts: tuple[str, ...] = ()
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_private: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OutboundPolicy:
        """Read ``STEPLINE_OUTBOUND_ALLOW`` and ``STEPLINE_OUTBOUND_ALLOW_PRIVATE``."""
        env = os.environ if env is None else env
        hosts: list[str] = []
        networks: list[IPNetwork] = []
        for entry in (env.get(ALLOW_ENV) or "").split(","):
            entry = entry.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.append(entry)
        allow_private = (env.get(ALLOW_PRIVATE_ENV) or "").strip().lower() in ("1", "true", "yes")
        return cls(tuple(hosts), tuple(networks), allow_private)

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` is allow-listed by name (then every address it resolves to is fine)."""
        name = host.lower().rstrip(".")
        for allowed in self.allow_hosts:
            if name == allowed or (allowed.startswith(".") and name.endswith(allowed)):
                return True
        return False

    def refusal(self, address: IPAddress) -> str | None:
        """None when a connection to ``address`` is allowed, else why it is not."""
        if any(address in network for network in self.allow_networks):
            return None
        problem = address_problem(address)
        if problem is None:
            return None
        if self.allow_private and problem in ("a loopback address", "a private address"):
            return None
        return problem


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (address.sixtofour if address.sixtofour else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (includes the instance metadata service)"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    if address.is_reserved or not address.is_global:
        # Documentation, benchmarking, 0/8, 240/4, the broadcast address, discard prefixes...
        return "a reserved or special-purpose address"
    return None


def url_template_problem(url: str) -> str | None:
    """Check an outbound URL as written in a definition, before any placeholder is filled.

    None when the scheme is http or https and the host and port are literal (no ``{{``
    placeholder before the path) and valid; otherwise a message for a ``FieldError``.
    """
    if not isinstance(url, str) or not url.strip():
        return "required: an http:// or https:// URL"
    return _template_problem(url)


@lru_cache(maxsize=512)
def _template_problem(url: str) -> str | None:
    # a pure function of the text: the http agent checks its step's URL before every call
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)", url)
    if not match or match.group(1).lower() not in ("http", "https"):
        return "must be an http:// or https:// URL"
    authority = match.group(2)
    if "{" in authority or "}" in authority:
        return "the scheme, host and port must be literal: no {{ }} placeholder before the path"
    if "@" in authority:
        return "must not carry user info (user:password@); use a connection for credentials"
    if any(ch.isspace() or ord(ch) < 32 for ch in re.sub(r"\{\{.*?\}\}", "", url, flags=re.DOTALL)):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "has an invalid port (1-65535)"
    if port == 0:
        return "has an invalid port (1-65535)"
    host = parts.hostname or ""
    if not host:
        return "must name a host"
    if authority.lstrip().startswith("["):
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"has an invalid IPv6 host [{host}]"
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return f"has an invalid host name {host!r}"
    if not _HOST_CHARS.match(ascii_host) or ".." in ascii_host or len(ascii_host) > 253:
        return f"has an invalid host name {host!r}"
    return None


def open_url(request: urllib.request.Request, timeout: float, *, policy: OutboundPolicy | None = None) -> Any:
    """Open ``request`` like ``opener.open`` with the guard applied; redirects are not followed.

    Returns the response object (a context manager). A 3xx, like any non-2xx status, is raised
    as ``urllib.error.HTTPError``; a refused address raises ``OutboundBlocked`` (a
    ``URLError``); other network failures raise ``URLError``/``OSError`` as urllib does.
    """
    policy = policy or OutboundPolicy.from_env()
    scheme = urlsplit(request.full_url).scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundBlocked(request.host or request.full_url, f"scheme {scheme or '(none)'!r} is not http or https")
    try:
        return _opener(policy).open(request, timeout=timeout)
    except urllib.error.URLError as exc:
        # urllib wraps any OSError raised while connecting (ours included) in a URLError.
        if isinstance(exc.reason, OutboundBlocked):
            raise exc.reason from None
        raise


@lru_cache(maxsize=16)
def _opener(policy: OutboundPolicy) -> urllib.request.OpenerDirector:
    """The guarded opener for ``policy``, built once (policies are immutable and hashable)."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # the address checked must be the address connected to
        _GuardedHTTPHandler(policy),
        _GuardedHTTPSHandler(policy),
        _NoRedirect(),
    )


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """The TLS context of https calls, made as ``http.client`` makes its default one per
    connection (certificates and hostname verified against the system's CA bundle), once."""
    context = ssl._create_default_https_context()
    context.set_alpn_protocols(["http/1.1"])
    if context.post_handshake_auth is not None:
        context.post_handshake_auth = True
    return context


def _checked_connection(
    host: str, port: int, timeout: Any, source_address: Any, policy: OutboundPolicy
) -> socket.socket:
    """Resolve ``host``, keep the allowed addresses and connect to the first that answers."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    named_ok = policy.host_allowed(host)
    allowed: list[tuple[Any, ...]] = []
    refusals: list[str] = []
    for family, kind, proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        why = None if named_ok else policy.refusal(address)
        if why is None:
            allowed.append((family, kind, proto, sockaddr))
        else:
            refusals.append(f"{address} is {why}")
    if not allowed:
        reason = "; ".join(dict.fromkeys(refusals)) or "it resolves to no address"
        raise OutboundBlocked(host, f"{reason} (allow it with {ALLOW_ENV})")
    last_error: OSError | None = None
    for family, kind, proto, sockaddr in allowed:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)  # the checked address itself: no second resolution
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    assert last_error is not None
    raise last_error


class _GuardedHTTPConnection(http.client.HTTPConnection):
    policy: OutboundPolicy = OutboundPolicy()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # http.client connects through this attribute; HTTPSConnection wraps the result in TLS
        # with the original host name, so certificates are still checked against the name.
        self._create_connection = self._guarded_create_connection

    def _guarded_create_connection(
        self, address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        return _checked_connection(address[0], address[1], timeout, source_address, self.policy)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    policy: OutboundPolicy = OutboundPolicy()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = self._guarded_create_connection

    def _guarded_create_connection(
        self, address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        return _checked_connection(address[0], address[1], timeout, source_address, self.policy)


def _bound(cls: type, policy: OutboundPolicy) -> Any:
    """A connection factory carrying ``policy`` (urllib builds connections from a class)."""

    def factory(*args: Any, **kwargs: Any) -> Any:
        connection = cls(*args, **kwargs)
        connection.policy = policy
        return connection

    return factory


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self._policy = policy

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_bound(_GuardedHTTPConnection, self._policy), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self._policy = policy

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_bound(_GuardedHTTPSConnection, self._policy), req, context=_tls_context())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx back as an HTTPError instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
