"""http_request keeps its connections to a host alive between calls (one session per
thread), but never its cookies: what one call receives is not sent by the next."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from app.config import Settings
from workers.connectors import http_request


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        return None

    def do_GET(self):
        self.server.seen.append((self.path, self.client_address[1], self.headers.get("Cookie")))
        body = b'{"ok": true}'
        self.send_response(200)
        if self.path == "/login":
            self.send_header("Set-Cookie", "session=secret-of-the-first-call; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    httpd.daemon_threads = True
    httpd.seen = []
    Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_calls_reuse_the_connection_but_never_the_cookies(server, tmp_path):
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings(database_url="sqlite://", instance_dir=tmp_path)

    assert http_request({"url": f"{base}/login"}, settings)["status"] == 200
    assert http_request({"url": f"{base}/next"}, settings)["status"] == 200

    (first, port_a, _), (second, port_b, cookie) = server.seen
    assert (first, second) == ("/login", "/next")
    assert port_a == port_b  # the same TCP connection, kept alive
    assert cookie is None  # the first call's cookie was not kept
