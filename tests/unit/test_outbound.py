"""The outbound guard against a real listener on loopback: what it refuses, what it lets
through under each policy, and the static URL rule used by definition validation."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.outbound import (
    ALLOW_ENV,
    ALLOW_PRIVATE_ENV,
    OutboundBlocked,
    OutboundPolicy,
    address_problem,
    open_url,
    url_template_problem,
)

DENY = OutboundPolicy()


class _Listener(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        _Listener.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _get(url: str, policy: OutboundPolicy) -> bytes:
    with open_url(urllib.request.Request(url), 5, policy=policy) as response:
        return response.read()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "0x7f000001", "2130706433", "017700000001", "127.1", "[::ffff:127.0.0.1]", "0.0.0.0"],
)
def test_loopback_in_any_spelling_is_refused_before_a_request_is_sent(port: int, host: str) -> None:
    _Listener.hits.clear()
    with pytest.raises(OutboundBlocked) as refused:
        _get(f"http://{host}:{port}/secret", DENY)
    assert _Listener.hits == []
    message = str(refused.value)
    assert "refused" in message and ALLOW_ENV in message
    assert "loopback" in message or "unspecified" in message
    assert isinstance(refused.value, urllib.error.URLError)


def test_metadata_address_is_refused_even_when_private_addresses_are_allowed() -> None:
    with pytest.raises(OutboundBlocked) as refused:
        _get("http://169.254.169.254/latest/meta-data/", OutboundPolicy(allow_private=True))
    assert "169.254.169.254" in str(refused.value) and "link-local" in str(refused.value)


def test_allow_private_lets_loopback_through(port: int) -> None:
    assert _get(f"http://127.0.0.1:{port}/ok", OutboundPolicy(allow_private=True)) == b"ok"
    assert _get(f"http://localhost:{port}/ok", OutboundPolicy(allow_private=True)) == b"ok"


def test_allow_list_by_cidr_and_by_host_name(port: int) -> None:
    by_cidr = OutboundPolicy.from_env({ALLOW_ENV: " 127.0.0.0/8 , example.org"})
    assert _get(f"http://127.0.0.1:{port}/ok", by_cidr) == b"ok"
    by_name = OutboundPolicy.from_env({ALLOW_ENV: "LOCALHOST"})
    assert _get(f"http://localhost:{port}/ok", by_name) == b"ok"
    with pytest.raises(OutboundBlocked):  # the name is allowed, not the address behind another name
        _get(f"http://127.0.0.1:{port}/ok", by_name)


def test_environment_policy_is_read_at_each_call(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "0")
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(OutboundBlocked), open_url(urllib.request.Request(f"http://127.0.0.1:{port}/ok"), 5):
        pass
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    with open_url(urllib.request.Request(f"http://127.0.0.1:{port}/ok"), 5) as response:
        assert response.read() == b"ok"


def test_redirects_come_back_as_http_errors_and_are_not_followed(port: int) -> None:
    with pytest.raises(urllib.error.HTTPError) as answered:
        _get(f"http://127.0.0.1:{port}/redirect", OutboundPolicy(allow_private=True))
    assert answered.value.code == 302
    answered.value.close()


def test_non_http_schemes_are_refused() -> None:
    with pytest.raises(OutboundBlocked):
        _get("file:///etc/passwd", OutboundPolicy(allow_private=True))


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "reserved"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
    ],
)
def test_address_classes(address: str, kind: str) -> None:
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None and kind in problem


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://billing.example/notes",
        "http://api.example:8080/x/{{ input.id }}",
        "https://[2001:db8::1]:443/",
        "https://example.com?q={{ input.q }}",
        "https://bücher.example/",
    ],
)
def test_literal_urls_pass_the_template_rule(url: str) -> None:
    assert url_template_problem(url) is None


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://127.0.0.{{input.h}}/", "placeholder before the path"),
        ("http://a{{input.h}}/", "placeholder before the path"),
        ("http://example.com:{{input.port}}/", "placeholder before the path"),
        ("{{input.url}}", "http:// or https://"),
        ("ftp://example.com/", "http:// or https://"),
        ("http://user:pw@example.com/", "user info"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:0/", "port"),
        ("http:///path", "host"),
        ("http://exa mple.com/", "spaces"),
        ("http://ex_am!ple.com/", "host name"),
        ("", "required"),
    ],
)
def test_template_rule_names_the_problem(url: str, words: str) -> None:
    problem = url_template_problem(url)
    assert problem is not None and words in problem


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA signed, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_https_certificates_are_verified_on_every_call(tmp_path: Path) -> None:
    # the TLS context is made once and kept: every call must still reject an untrusted certificate
    cert_file, key_file = _self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        _Listener.hits.clear()
        for _ in range(3):
            with pytest.raises(urllib.error.URLError) as refused:
                _get(f"https://127.0.0.1:{server.server_address[1]}/ok", OutboundPolicy(allow_private=True))
            assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        assert _Listener.hits == []
    finally:
        server.shutdown()
        server.server_close()
