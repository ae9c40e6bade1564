"""The local API Gateway: HTTP in, a payload 2.0 event to the routed function, HTTP out.

It plays API Gateway's part and nothing more: no route answers 404
``{"message":"Not Found"}``, a function that fails answers 502
``{"message":"Internal Server Error"}``, and everything else is the
function's own response. Requests are served on threads; each function's
container still takes one invocation at a time.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from storefront_dev.lambda_process import Invocation
from storefront_dev.routes import (
    GatewayRequest,
    GatewayResponse,
    Router,
    build_event,
    gateway_error,
    response_from_result,
)

# Lambda refuses synchronous payloads over 6 MB; API Gateway answers 413 for them.
MAX_BODY_BYTES = 6 * 1024 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class Invoker(Protocol):
    def invoke(self, function_id: str, event: Mapping[str, Any]) -> Invocation: ...


class LocalGateway:
    def __init__(
        self, router: Router, invoker: Invoker, host: str = "127.0.0.1", port: int = 3000
    ) -> None:
        self.router = router
        self.invoker = invoker
        self._server = _Server((host, port), _RequestHandler)
        self._server.gateway = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        # A short poll interval keeps stop() (which waits for one poll) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def handle(self, request: GatewayRequest) -> tuple[GatewayResponse, str]:
        """The response to ``request`` and what served it (for the request log)."""
        match = self.router.match(request.method, request.target.partition("?")[0])
        if match is None:
            return gateway_error(404, "Not Found"), "no route"
        request_id = _api_request_id()
        event = build_event(request, match, request_id=request_id)
        invocation = self.invoker.invoke(match.route.function_id, event)
        served_by = f"{match.route.function_id} {invocation.request_id}"
        if invocation.error is not None:
            response = gateway_error(502, "Internal Server Error")
            served_by += f" ({invocation.error.get('errorType', 'error')})"
        else:
            response = response_from_result(invocation.result)
        # API Gateway names its own request id in every response.
        headers = [*response.headers, ("apigw-requestid", request_id)]
        return GatewayResponse(response.status, headers, response.body), served_by


def _api_request_id() -> str:
    # The shape of API Gateway's ids ("JLKcDjxxoAMEVbA="): short and opaque.
    return uuid.uuid4().hex[:14].upper() + "="


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a client's idle keep-alive connection never blocks a stop
    gateway: LocalGateway


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of API Gateway
    # A response leaves in two writes (headers, then body). With Nagle's
    # algorithm on, the body waits for the client to acknowledge the headers,
    # and a client delays that ACK by up to 40 ms: every answer took 40 ms
    # more on a keep-alive connection. TCP_NODELAY sends each write at once.
    disable_nagle_algorithm = True
    server_version = "local-api-gateway"
    sys_version = ""
    server: _Server

    def _serve(self) -> None:
        started = time.perf_counter()
        response, served_by = self._respond()
        elapsed = (time.perf_counter() - started) * 1000
        sys.stderr.write(
            f'gateway: "{self.command} {self.path}" {response.status} {elapsed:.1f} ms'
            f" -> {served_by}\n"
        )
        self._write(response)

    def _respond(self) -> tuple[GatewayResponse, str]:
        try:
            body = self._read_body()
        except ValueError:  # a Content-Length or chunk size that is not a number
            self.close_connection = True
            return gateway_error(400, "Bad Request"), "bad request"
        if body is None:
            # The unread body is still on the socket: this connection is done.
            self.close_connection = True
            return gateway_error(413, "Request Entity Too Large"), "too large"
        request = GatewayRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        return self.server.gateway.handle(request)

    def __getattr__(self, name: str) -> Any:
        # http.server dispatches to do_<METHOD> and answers 501 (in HTML) when
        # there is none. API Gateway takes any method (QUERY, PROPFIND, ...):
        # an ANY route gets it, and it answers 404 when no route has it.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self) -> bytes | None:
        """The request body; None when it is over the limit."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk_size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if chunk_size == 0:
                while self.rfile.readline().strip():  # trailers, then the blank line
                    pass
                return b"".join(chunks)
            size += chunk_size
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(self.rfile.read(chunk_size))
            self.rfile.readline()  # the CRLF after each chunk

    def _write(self, response: GatewayResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        has_body = response.status not in _NO_BODY_STATUSES and response.status >= 200
        # The functions answer a HEAD without its body: a length of 0 would
        # claim the GET's is empty, so none is sent then.
        if has_body and (response.body or self.command != "HEAD"):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if has_body and self.command != "HEAD":
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: :meth:`_serve` logs one line per request with more to say."""


__all__ = ["Invoker", "LocalGateway"]
