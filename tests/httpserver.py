"""A tiny local HTTP file server for download tests: serves given bytes, can honour Range, can cut.

Usage::

    with FileServer({"/d/x.zip": data}) as server:
        server.cut_next("/d/x.zip", 100)   # the next response stops after 100 body bytes
        download(server.url + "/d/x.zip", dest)
        server.log                         # [Request(method, path, range), ...]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    """One request the server saw: method, path and the Range header (None when absent)."""

    method: str
    path: str
    range: str | None


class FileServer:
    """Serve ``files`` (path -> bytes) on 127.0.0.1 in a background thread; a context manager.

    ``honour_range=False`` makes it ignore Range headers (always a full 200), like some servers.
    """

    def __init__(self, files: dict[str, bytes], *, honour_range: bool = True) -> None:
        self.files = dict(files)
        self.honour_range = honour_range
        self.log: list[Request] = []
        self._cuts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval so that leaving the context (shutdown) takes milliseconds, not 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def cut_next(self, path: str, nbytes: int) -> None:
        """Make the next response for ``path`` send only ``nbytes`` body bytes, then drop the connection."""
        with self._lock:
            self._cuts.setdefault(path, []).append(nbytes)

    def take_cut(self, path: str) -> int | None:
        """Pop the pending cut for ``path`` (used by the handler)."""
        with self._lock:
            pending = self._cuts.get(path)
            return pending.pop(0) if pending else None

    def record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _parse_range(header: str) -> int | None:
    """First byte of a ``bytes=N-`` range, or None when the header is not that simple form."""
    unit, _, spec = header.partition("=")
    first, _, last = spec.partition("-")
    if unit.strip() != "bytes" or last or not first.isdigit():
        return None
    return int(first)


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(send_body=False)

        def _serve(self, *, send_body: bool) -> None:
            range_header = self.headers.get("Range")
            server.record(Request(self.command, self.path, range_header))
            data = server.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = _parse_range(range_header) if range_header and server.honour_range else None
            if start is not None and start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = data[start:] if start is not None else data
            self.send_response(206 if start is not None else 200)
            if start is not None:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes" if server.honour_range else "none")
            self.end_headers()
            if not send_body:
                return
            cut = server.take_cut(self.path)
            # A cut keeps the full Content-Length but closes early, as a dropped connection does.
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            return

    return Handler
