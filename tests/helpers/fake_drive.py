"""A local stand-in for Google Drive and for a plain HTTP mirror, on 127.0.0.1 only, so that `p3m models
download` runs its real code path (gdown, requests) in tests.

Drive is reached the way a client behind a company proxy reaches it: `HTTPS_PROXY` points at this server,
which answers CONNECT for drive.google.com and drive.usercontent.google.com with TLS under a test CA
(trustme) that `REQUESTS_CA_BUNDLE` names. It answers `/uc?id=ID` with the large-file confirmation page
(a form `download-form`, as Drive does since 2024) and the form's target with the file. Plain HTTP requests
are the mirror: `/files/NAME`. Both honour `Range` (with `If-Range`) and can cut a transfer short.
"""
from __future__ import annotations

import hashlib
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

DRIVE_HOSTS = ("drive.google.com", "drive.usercontent.google.com")
CONFIRM_PAGE = (
    '<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
    '<p class="uc-warning-caption">Google Drive can\'t scan this file for viruses.</p>'
    '<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
    '<input type="submit" value="Download anyway"/><input type="hidden" name="id" value="{id}">'
    '<input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t">'
    '<input type="hidden" name="uuid" value="0f6e1c2a"></form></body></html>'
)


@dataclass
class Request:
    host: str
    path: str
    range: str | None


@dataclass
class FakeDrive:
    """Files by Drive id (`drive`) and by mirror name (`mirror`); `cut` > 0 makes that many transfers stop
    after `cut_at` bytes; `requests` records what came in."""

    folder: Path
    drive: dict[str, tuple[str, bytes]] = field(default_factory=dict)   # id -> (file name, bytes)
    mirror: dict[str, bytes] = field(default_factory=dict)
    confirm: bool = True
    cut: int = 0
    cut_at: int = 0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        ca = trustme.CA()
        self.ca_file = self.folder / "fake_drive_ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*DRIVE_HOSTS).configure_cert(self.tls)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/files/{name}"

    def env(self) -> dict[str, str]:
        """What a client needs to reach this Drive (proxy, CA) and the mirror directly."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {"HTTPS_PROXY": proxy, "https_proxy": proxy, "HTTP_PROXY": "", "http_proxy": "", "ALL_PROXY": "",
                "all_proxy": "", "NO_PROXY": "", "no_proxy": "", "REQUESTS_CA_BUNDLE": str(self.ca_file)}

    def __enter__(self) -> FakeDrive:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def ranges(self) -> list[str]:
        return [r.range for r in self.requests if r.range]


def _handler(drive: FakeDrive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        host = ""

        def log_message(self, *args: object) -> None:
            pass

        def do_CONNECT(self) -> None:               # the proxy: a TLS tunnel to "Drive", which is us
            host = self.path.rsplit(":", 1)[0]
            if host not in DRIVE_HOSTS:
                self.send_error(403)
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.connection = drive.tls.wrap_socket(self.connection, server_side=True)
            self.rfile = self.connection.makefile("rb")
            self.wfile = socketserver._SocketWriter(self.connection)
            self.host = host
            self.close_connection = False

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            host = self.host or "127.0.0.1"
            with drive.lock:
                drive.requests.append(Request(host, url.path, self.headers.get("Range")))
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if host == "drive.google.com" and url.path == "/uc" and query.get("id") in drive.drive:
                name, data = drive.drive[query["id"]]
                if drive.confirm:
                    return self._send(200, CONFIRM_PAGE.format(id=query["id"]).encode(), "text/html; charset=utf-8")
                return self._file(data, name)
            if host == "drive.usercontent.google.com" and url.path == "/download" and query.get("confirm") == "t" \
                    and query.get("id") in drive.drive:
                name, data = drive.drive[query["id"]]
                return self._file(data, name)
            if host == "127.0.0.1" and url.path.startswith("/files/") and url.path[7:] in drive.mirror:
                return self._file(drive.mirror[url.path[7:]], None)
            self._send(404, b"not found", "text/plain")

        def _file(self, data: bytes, name: str | None) -> None:
            etag = '"' + hashlib.sha1(data).hexdigest() + '"'
            start = 0
            wanted = self.headers.get("Range")
            if wanted and self.headers.get("If-Range", etag) == etag and wanted.startswith("bytes="):
                start = int(wanted[6:].split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if name:
                self.send_header("Content-Disposition", f'attachment; filename="{name}"')
            self.end_headers()
            with drive.lock:
                cut = drive.cut > 0
                drive.cut -= cut
            body = data[start:]
            if cut:
                body = body[:max(drive.cut_at - start, 0)]
                self.close_connection = True
            self.wfile.write(body)

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def finish(self) -> None:
            super().finish()
            if self.host:
                try:
                    self.connection.close()
                except OSError:
                    pass

    return Handler
