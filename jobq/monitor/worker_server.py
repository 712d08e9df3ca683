"""The worker's monitor port (`jobq worker --monitor-port N`): a small HTTP server in a
daemon thread, bound to 127.0.0.1 by default.

- `GET /status` (and `/`): the worker's status, running jobs, recent polls, job records and
  statistics as JSON, with snake_case keys (`jobq worker-status URL` reads it);
- `GET /metrics`: the worker's Prometheus metrics.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from jobq.monitor.metrics import CONTENT_TYPE, worker_metrics
from jobq.monitor.render import to_json, worker_snapshot_json

if TYPE_CHECKING:
    from jobq.worker.dispatcher import Dispatcher


class WorkerMonitorServer:
    """Serves one dispatcher's statistics until `close()`."""

    def __init__(self, dispatcher: Dispatcher, port: int, host: str = "127.0.0.1") -> None:
        stats = dispatcher.stats

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                if path in ("", "/status"):
                    body = to_json(worker_snapshot_json(stats.snapshot()))
                    self._send(200, "application/json", body)
                elif path == "/metrics":
                    self._send(200, CONTENT_TYPE, worker_metrics(stats))
                else:
                    self._send(404, "text/plain", "not found: try /status or /metrics\n")

            def _send(self, code: int, kind: str, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no access log on stderr

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="jobq-monitor-port", daemon=True
        )

    def start(self) -> WorkerMonitorServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
