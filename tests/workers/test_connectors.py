"""Connector tests against a real local HTTP server, a real SMTP server and the outbox."""

from __future__ import annotations

import datetime
import email
import ipaddress
import json
import socket
import ssl
import threading
import time
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.config import Settings
from workers.connectors import (
    REGISTRY,
    ConnectorError,
    connector_names,
    http_request,
    run_connector,
    send_email,
)

# --- local HTTP server -------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Serves fixed answers by path; echoes the request on /json."""

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _request_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _echo(self) -> None:
        echo = {
            "method": self.command,
            "body": self._request_json(),
            "x_test": self.headers.get("X-Test"),
        }
        self._reply(200, json.dumps(echo).encode(), "application/json; charset=utf-8")

    def _route(self) -> None:
        path = self.path.split("?")[0]
        if path == "/json":
            return self._echo()
        if path == "/slow":
            time.sleep(2)
        answers = {
            "/text": (200, b"hello, world"),
            "/big": (200, b"x" * 100_000),
            "/bad-json": (200, b"{not json", "application/json"),
            "/missing": (404, b"no such thing here"),
            "/busy": (429, b"slow down"),
            "/unavailable": (503, b"try later"),
            "/slow": (200, b"finally"),
        }
        self._reply(*answers.get(path, (404, b"unknown path")))

    do_GET = do_POST = do_PUT = do_DELETE = _route


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def settings(tmp_path):
    return Settings(database_url="sqlite://", instance_dir=tmp_path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- registry ----------------------------------------------------------------


def test_registry_lists_builtins_and_is_read_only():
    assert connector_names() == frozenset({"http_request", "send_email"})
    assert REGISTRY["http_request"] is http_request
    with pytest.raises(TypeError):
        REGISTRY["evil"] = http_request  # type: ignore[index]


def test_unknown_connector_is_not_retryable(settings):
    with pytest.raises(ConnectorError, match="unknown connector 'nope'") as info:
        run_connector("nope", {}, settings)
    assert info.value.retryable is False


def test_params_must_be_a_mapping(settings):
    with pytest.raises(ConnectorError) as info:
        run_connector("http_request", ["url"], settings)  # type: ignore[arg-type]
    assert info.value.retryable is False


def test_connector_error_defaults_to_retryable():
    assert ConnectorError("boom").retryable is True
    assert ConnectorError("boom", retryable=False).retryable is False


# --- http_request ------------------------------------------------------------


def test_get_json(base_url, settings):
    result = run_connector("http_request", {"url": f"{base_url}/json"}, settings)
    assert result == {"status": 200, "json": {"method": "GET", "body": None, "x_test": None}}
    json.dumps(result)


def test_post_json_body_and_headers(base_url, settings):
    params = {
        "method": "post",
        "url": f"{base_url}/json",
        "json": {"a": [1, 2]},
        "headers": {"X-Test": "yes"},
    }
    result = run_connector("http_request", params, settings)
    assert result["json"] == {"method": "POST", "body": {"a": [1, 2]}, "x_test": "yes"}


def test_text_response(base_url, settings):
    result = run_connector("http_request", {"url": f"{base_url}/text"}, settings)
    assert result == {"status": 200, "text": "hello, world"}


def test_text_is_truncated_to_64_kib(base_url, settings):
    result = run_connector("http_request", {"url": f"{base_url}/big"}, settings)
    assert result["text"] == "x" * 65536


def test_invalid_json_falls_back_to_text(base_url, settings):
    result = run_connector("http_request", {"url": f"{base_url}/bad-json"}, settings)
    assert result == {"status": 200, "text": "{not json"}


def test_404_is_not_retryable_and_names_status_and_body(base_url, settings):
    with pytest.raises(ConnectorError, match="404.*no such thing here") as info:
        run_connector("http_request", {"url": f"{base_url}/missing"}, settings)
    assert info.value.retryable is False


@pytest.mark.parametrize(("path", "status"), [("/unavailable", 503), ("/busy", 429)])
def test_503_and_429_are_retryable(base_url, settings, path, status):
    with pytest.raises(ConnectorError, match=str(status)) as info:
        run_connector("http_request", {"url": base_url + path}, settings)
    assert info.value.retryable is True


def test_timeout_is_retryable(base_url, settings):
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="timed out") as info:
        run_connector("http_request", {"url": f"{base_url}/slow", "timeout": 0.3}, settings)
    assert info.value.retryable is True
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_retryable(settings):
    url = f"http://127.0.0.1:{_free_port()}/"
    with pytest.raises(ConnectorError, match="failed") as info:
        run_connector("http_request", {"url": url}, settings)
    assert info.value.retryable is True


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "url"),
        ({"url": ""}, "url"),
        ({"url": 42}, "url"),
        ({"url": "ftp://127.0.0.1/file"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "/relative"}, "url"),
        ({"url": "http://127.0.0.1/", "method": "BREW"}, "method"),
        ({"url": "http://127.0.0.1/", "headers": ["X-A"]}, "headers"),
        ({"url": "http://127.0.0.1/", "headers": {"X-A": 1}}, "headers"),
        ({"url": "http://127.0.0.1/", "timeout": "10"}, "timeout"),
        ({"url": "http://127.0.0.1/", "timeout": True}, "timeout"),
        ({"url": "http://127.0.0.1/", "timeout": 0}, "timeout"),
        ({"url": "http://127.0.0.1/", "timeout": 61}, "timeout"),
    ],
)
def test_http_parameter_errors_name_the_parameter(settings, params, name):
    with pytest.raises(ConnectorError, match=f"parameter '{name}'") as info:
        run_connector("http_request", params, settings)
    assert info.value.retryable is False


# --- send_email: outbox ------------------------------------------------------

MAIL = {"to": "ada@example.com", "subject": "Your ticket", "body": "We are on it."}


def _read_eml(path):
    with open(path, "rb") as handle:
        return email.message_from_binary_file(handle, policy=policy.default)


def test_outbox_writes_eml_file(settings):
    result = run_connector("send_email", MAIL, settings)
    assert result["delivered_via"] == "outbox"
    assert result["to"] == ["ada@example.com"]
    files = list(settings.outbox_dir.iterdir())
    assert [str(f) for f in files] == [result["path"]]
    assert files[0].suffix == ".eml"
    message = _read_eml(files[0])
    assert message["To"] == "ada@example.com"
    assert message["From"] == settings.smtp_from
    assert message["Subject"] == "Your ticket"
    assert message["Message-ID"] == result["message_id"]
    assert message.get_content().strip() == "We are on it."
    json.dumps(result)


def test_outbox_file_name_is_timestamp_and_uuid(settings):
    path = Path(run_connector("send_email", MAIL, settings)["path"])
    stamp, _, rest = path.stem.partition("-")
    assert stamp.endswith("Z") and stamp[:8].isdigit()
    assert len(rest) == 32 and int(rest, 16) >= 0


def test_outbox_with_html_and_several_recipients(settings):
    params = {**MAIL, "to": ["ada@example.com", "bob@example.org"], "html": "<p>On it</p>"}
    result = send_email(params, settings)
    assert result["to"] == ["ada@example.com", "bob@example.org"]
    message = _read_eml(result["path"])
    assert message["To"] == "ada@example.com, bob@example.org"
    assert message.get_body(("plain",)).get_content().strip() == "We are on it."
    assert message.get_body(("html",)).get_content().strip() == "<p>On it</p>"


def test_outbox_leaves_no_temp_files(settings):
    for _ in range(3):
        run_connector("send_email", MAIL, settings)
    names = sorted(p.name for p in settings.outbox_dir.iterdir())
    assert len(names) == 3 and all(n.endswith(".eml") and not n.startswith(".") for n in names)


def test_outbox_write_failure_is_retryable(tmp_path):
    (tmp_path / "outbox").write_text("a file where the directory should be")
    settings = Settings(database_url="sqlite://", instance_dir=tmp_path)
    with pytest.raises(ConnectorError, match="outbox") as info:
        run_connector("send_email", MAIL, settings)
    assert info.value.retryable is True


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"to": None}, "to"),
        ({"to": []}, "to"),
        ({"to": "not-an-address"}, "to"),
        ({"to": ["ada@example.com", "x@y@z"]}, "to"),
        ({"to": "ada@example.com, eve@example.com"}, "to"),
        ({"to": [1]}, "to"),
        ({"subject": None}, "subject"),
        ({"subject": "hi\nBcc: eve@example.com"}, "subject"),
        ({"body": None}, "body"),
        ({"body": 3}, "body"),
        ({"html": ["<p>"]}, "html"),
    ],
)
def test_email_parameter_errors_name_the_parameter(settings, change, name):
    params = {k: v for k, v in {**MAIL, **change}.items() if v is not None}
    with pytest.raises(ConnectorError, match=f"parameter '{name}'") as info:
        run_connector("send_email", params, settings)
    assert info.value.retryable is False
    assert not settings.outbox_dir.exists()


# --- send_email: SMTP --------------------------------------------------------


class _Collector:
    """aiosmtpd handler that keeps every message and refuses 'reject*' recipients."""

    def __init__(self):
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


class _EphemeralController(Controller):
    """Controller bound to port 0; learns the real port before its self-test."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _start_smtp(**kwargs):
    handler = _Collector()
    controller = _EphemeralController(
        handler, hostname="127.0.0.1", port=0, server_hostname="localhost", **kwargs
    )
    controller.start()
    return handler, controller


@pytest.fixture
def smtp_server():
    handler, controller = _start_smtp()
    yield handler, controller.port
    controller.stop()


def _smtp_settings(tmp_path, port, **overrides):
    return Settings(
        database_url="sqlite://",
        instance_dir=tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="desk@clientconnect.test",
        **overrides,
    )


def test_smtp_delivery(smtp_server, tmp_path):
    handler, port = smtp_server
    settings = _smtp_settings(tmp_path, port)
    params = {**MAIL, "to": ["ada@example.com", "bob@example.org"], "html": "<b>hi</b>"}
    result = run_connector("send_email", params, settings)
    assert result["delivered_via"] == "smtp" and "path" not in result
    assert result["to"] == ["ada@example.com", "bob@example.org"]
    [envelope] = handler.envelopes
    assert envelope.mail_from == "desk@clientconnect.test"
    assert envelope.rcpt_tos == ["ada@example.com", "bob@example.org"]
    message = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "Your ticket"
    assert message["Message-ID"] == result["message_id"]
    assert message.get_body(("html",)).get_content().strip() == "<b>hi</b>"
    assert not settings.outbox_dir.exists()


def test_smtp_all_recipients_refused_is_not_retryable(smtp_server, tmp_path):
    handler, port = smtp_server
    params = {**MAIL, "to": "reject@example.com"}
    with pytest.raises(ConnectorError, match="refused") as info:
        run_connector("send_email", params, _smtp_settings(tmp_path, port))
    assert info.value.retryable is False
    assert handler.envelopes == []


def test_smtp_some_recipients_refused_is_not_retryable(smtp_server, tmp_path):
    handler, port = smtp_server
    params = {**MAIL, "to": ["ada@example.com", "reject@example.com"]}
    with pytest.raises(ConnectorError, match="reject@example.com") as info:
        run_connector("send_email", params, _smtp_settings(tmp_path, port))
    assert info.value.retryable is False
    assert handler.envelopes[0].rcpt_tos == ["ada@example.com"]


def test_smtp_unreachable_is_retryable(tmp_path):
    settings = _smtp_settings(tmp_path, _free_port())
    with pytest.raises(ConnectorError) as info:
        run_connector("send_email", MAIL, settings)
    assert info.value.retryable is True


def test_smtp_login(tmp_path):
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    handler, controller = _start_smtp(authenticator=authenticator, auth_require_tls=False)
    try:
        settings = _smtp_settings(
            tmp_path, controller.port, smtp_user="desk", smtp_password="s3cret"
        )
        assert run_connector("send_email", MAIL, settings)["delivered_via"] == "smtp"
        wrong = settings.with_overrides(smtp_password="wrong")
        with pytest.raises(ConnectorError, match="failed"):
            run_connector("send_email", MAIL, wrong)
    finally:
        controller.stop()
    assert seen[0] == (b"desk", b"s3cret")
    assert len(handler.envelopes) == 1


def test_smtp_tls_without_starttls_support_is_retryable(smtp_server, tmp_path):
    handler, port = smtp_server
    with pytest.raises(ConnectorError) as info:
        run_connector("send_email", MAIL, _smtp_settings(tmp_path, port, smtp_tls=True))
    assert info.value.retryable is True
    assert handler.envelopes == []


@pytest.fixture
def self_signed_cert(tmp_path):
    """A certificate for 127.0.0.1, made with the `cryptography` package (no openssl binary)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert, key_file


def test_smtp_starttls(self_signed_cert, tmp_path, monkeypatch):
    cert, key = self_signed_cert
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    handler, controller = _start_smtp(tls_context=server_context, require_starttls=True)
    try:
        settings = _smtp_settings(tmp_path, controller.port, smtp_tls=True)
        assert run_connector("send_email", MAIL, settings)["delivered_via"] == "smtp"
    finally:
        controller.stop()
    assert len(handler.envelopes) == 1
