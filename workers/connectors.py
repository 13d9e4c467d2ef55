"""Service-task connectors: plain functions ``(params, settings) -> dict``.

Results are JSON-serializable; failures raise `ConnectorError`. This module must not
import SpiffWorkflow, Flask or SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

import requests

from app.config import Settings

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0
MAX_TEXT_CHARS = 64 * 1024
EXCERPT_CHARS = 200
SMTP_TIMEOUT = 30.0
_ADDRESS = re.compile(r"[^@\s<>,;:\"'()\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


class ConnectorError(Exception):
    """A connector call failed; `retryable` says whether trying again may help.

    Network errors and 5xx answers are retryable; 4xx answers and bad parameters are not.
    """

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


Connector = Callable[[dict, Settings], dict]


# --- parameter helpers -------------------------------------------------------
def _invalid(name: str, problem: str) -> ConnectorError:
    """Build the non-retryable error for a bad or missing parameter."""
    return ConnectorError(f"parameter '{name}' {problem}", retryable=False)


def _required(params: dict, name: str):
    """Return a parameter that must be present and not empty."""
    value = params.get(name)
    if value is None or value == "":
        raise _invalid(name, "is required")
    return value


def _text(params: dict, name: str, required: bool = True) -> str | None:
    """Return a string parameter, optional when `required` is false."""
    value = _required(params, name) if required else params.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(name, "must be a string")
    return value


# --- http_request ------------------------------------------------------------
def _method(params: dict) -> str:
    """Return the upper-cased HTTP method, GET by default."""
    method = (_text(params, "method", required=False) or "GET").upper()
    if method not in HTTP_METHODS:
        raise _invalid("method", f"must be one of {', '.join(sorted(HTTP_METHODS))}")
    return method


def _url(params: dict) -> str:
    """Return the target URL, which must be absolute http or https."""
    url = _text(params, "url")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # e.g. "http://[::1/x": an unclosed IPv6 bracket
        raise _invalid("url", f"is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise _invalid("url", "must be an absolute http:// or https:// URL")
    return url


def _headers(params: dict) -> dict[str, str]:
    """Return the request headers, a mapping of strings to strings."""
    headers = params.get("headers") or {}
    valid = isinstance(headers, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    )
    if not valid:
        raise _invalid("headers", "must be an object mapping header names to strings")
    for name, value in headers.items():
        if not _is_latin1(name + value):
            raise _invalid("headers", f"header {name!r} must be Latin-1 text (HTTP headers "
                           "cannot carry other characters; encode the value first)")
    return dict(headers)


def _is_latin1(text: str) -> bool:
    """True when `text` can travel in an HTTP header (ISO-8859-1)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _json_body(params: dict):
    """Return the JSON body, which must be JSON-serializable (no sets, dates, objects...)."""
    body = params.get("json")
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        raise _invalid("json", f"is not JSON-serializable ({exc})") from exc
    return body


def _timeout(params: dict) -> float:
    """Return the timeout in seconds: a positive number up to MAX_TIMEOUT."""
    value = params.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid("timeout", "must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT:
        raise _invalid("timeout", f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
    return float(value)


def _excerpt(response: requests.Response) -> str:
    """Return the start of a response body on one line, for error messages."""
    text = " ".join(response.text[: EXCERPT_CHARS * 2].split())
    return text[:EXCERPT_CHARS] or "(empty body)"


def _check_status(response: requests.Response, method: str, url: str) -> None:
    """Raise ConnectorError unless the response is 2xx (5xx and 429 are retryable)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retryable = status >= 500 or status == 429
    raise ConnectorError(f"{method} {url} returned HTTP {status}: {_excerpt(response)}", retryable)


def _is_json(response: requests.Response) -> bool:
    """True when the response declares a JSON media type."""
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _result(response: requests.Response) -> dict:
    """Turn a successful response into the connector result."""
    if _is_json(response) and response.content:
        try:
            return {"status": response.status_code, "json": response.json()}
        except ValueError:
            pass
    return {"status": response.status_code, "text": response.text[:MAX_TEXT_CHARS]}


_local = threading.local()


def _session() -> requests.Session:
    """This thread's HTTP session: its connections to a host are kept and reused by later
    calls (no new TCP connection per call). Cookies are not: the jar is emptied after each
    call, so no call ever sends what another one received."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _send(method: str, url: str, params: dict) -> requests.Response:
    """Perform the request, mapping transport failures to ConnectorError."""
    kwargs = {"headers": _headers(params), "json": _json_body(params),
              "timeout": _timeout(params)}
    session = _session()
    try:
        return session.request(method, url, **kwargs)
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
            requests.exceptions.InvalidJSONError) as exc:
        raise ConnectorError(f"{method} {url} is not a valid request: {exc}", False) from exc
    except requests.exceptions.TooManyRedirects as exc:
        raise ConnectorError(f"{method} {url} redirected too many times", False) from exc
    except requests.Timeout as exc:
        raise ConnectorError(f"{method} {url} timed out after {kwargs['timeout']:g}s") from exc
    except requests.RequestException as exc:
        raise ConnectorError(f"{method} {url} failed: {exc}") from exc
    finally:
        session.cookies.clear()


def http_request(params: dict, settings: Settings) -> dict:
    """Call an HTTP endpoint; return ``{"status", "json"}`` or ``{"status", "text"}``."""
    method, url = _method(params), _url(params)
    response = _send(method, url, params)
    _check_status(response, method, url)
    return _result(response)


# --- send_email --------------------------------------------------------------
def _recipients(params: dict) -> list[str]:
    """Return the `to` addresses as a non-empty list of plausible addresses."""
    value = _required(params, "to")
    to = [value] if isinstance(value, str) else value
    if not isinstance(to, list) or not to or not all(isinstance(a, str) for a in to):
        raise _invalid("to", "must be an address or a non-empty list of addresses")
    bad = [a for a in to if not _ADDRESS.fullmatch(a.strip())]
    if bad:
        raise _invalid("to", f"contains invalid address(es): {', '.join(map(repr, bad))}")
    return [a.strip() for a in to]


def _subject(params: dict) -> str:
    """Return the subject, which must fit on one header line."""
    subject = _text(params, "subject")
    if "\r" in subject or "\n" in subject:
        raise _invalid("subject", "must not contain line breaks")
    return subject


def _build_message(to: list[str], params: dict, settings: Settings) -> EmailMessage:
    """Assemble the message: text body, plus an HTML alternative when given."""
    subject, body = _subject(params), _text(params, "body")
    html = _text(params, "html", required=False)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "localhost")
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def _smtp_session(smtp: smtplib.SMTP, message: EmailMessage, settings: Settings) -> dict:
    """Secure, authenticate and send on an open connection; return refused recipients."""
    if settings.smtp_tls:
        smtp.starttls(context=ssl.create_default_context())
    if settings.smtp_user:
        smtp.login(settings.smtp_user, settings.smtp_password or "")
    return smtp.send_message(message)


def _deliver_smtp(message: EmailMessage, settings: Settings) -> None:
    """Send through the configured SMTP server; refused recipients are not retryable."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
            refused = _smtp_session(smtp, message, settings)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ConnectorError(f"{where} refused all recipients: {exc.recipients}", False) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ConnectorError(f"sending mail through {where} failed: {exc!r}") from exc
    if refused:
        raise ConnectorError(f"{where} refused some recipients (others accepted): {refused}", False)


def _write_outbox(message: EmailMessage, outbox: Path) -> Path:
    """Write the message atomically as ``<UTC stamp>-<uuid>.eml`` under `outbox`."""
    outbox.mkdir(parents=True, exist_ok=True)
    target = outbox / f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.eml"
    fd, temp = tempfile.mkstemp(dir=outbox, prefix=".", suffix=".eml.part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
            os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        Path(temp).unlink(missing_ok=True)  # a no-op once replaced
    return target


def _deliver_outbox(message: EmailMessage, settings: Settings) -> Path:
    """Store the message in the outbox, mapping file-system errors to ConnectorError."""
    try:
        return _write_outbox(message, settings.outbox_dir)
    except OSError as exc:
        raise ConnectorError(f"writing to outbox {settings.outbox_dir} failed: {exc}") from exc


def send_email(params: dict, settings: Settings) -> dict:
    """Send an e-mail over SMTP, or drop it in the outbox when no SMTP host is set."""
    to = _recipients(params)
    message = _build_message(to, params, settings)
    result = {"message_id": message["Message-ID"], "to": to}
    if settings.smtp_host:
        _deliver_smtp(message, settings)
        return {**result, "delivered_via": "smtp"}
    path = _deliver_outbox(message, settings)
    return {**result, "delivered_via": "outbox", "path": str(path)}


# --- registry ----------------------------------------------------------------

REGISTRY: Mapping[str, Connector] = MappingProxyType(
    {"http_request": http_request, "send_email": send_email}
)


def connector_names() -> frozenset[str]:
    """Return the names a service task may use as its operation."""
    return frozenset(REGISTRY)


def run_connector(name: str, params: dict, settings: Settings) -> dict:
    """Run the connector called `name`; every failure leaves as a `ConnectorError`.

    Unknown names and bad parameters are not retryable; neither is any unexpected exception
    of a connector (a bug or a parameter it did not foresee: trying again would fail the same
    way), nor a result that is not JSON (it could not be stored)."""
    connector = REGISTRY.get(name)
    if connector is None:
        known = ", ".join(sorted(REGISTRY))
        raise ConnectorError(f"unknown connector {name!r} (known: {known})", retryable=False)
    if not isinstance(params, Mapping):
        raise ConnectorError("connector parameters must be an object", retryable=False)
    try:
        result = connector(dict(params), settings)
    except ConnectorError:
        raise
    except Exception as exc:
        raise ConnectorError(f"connector {name!r} failed unexpectedly: "
                             f"{type(exc).__name__}: {exc}", retryable=False) from exc
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"connector {name!r} returned a result that is not JSON: {exc}",
                             retryable=False) from exc
    return result
