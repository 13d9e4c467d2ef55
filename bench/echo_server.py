"""The service the scenario-6 service tasks call: answers every request with a small JSON body.

    python bench/echo_server.py PORT [SECONDS]

Binds 127.0.0.1 only, counts requests, and exits by itself after SECONDS (default 3600).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = json.dumps({"ok": True, "account": {"tier": "gold", "open_cases": 2}}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as most services
    disable_nagle_algorithm = True  # else a kept-alive answer waits for the delayed ACK (40 ms)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    do_GET = do_POST = _answer

    def log_message(self, *_args) -> None:  # quiet
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of concurrent connections (a worker
    # calling a batch's services at once) would overflow it and wait for SYN retransmits (1 s)
    request_queue_size = 128


def main(port: int, seconds: float) -> None:
    server = Server(("127.0.0.1", port), Handler)
    threading.Timer(seconds, server.shutdown).start()
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0)
