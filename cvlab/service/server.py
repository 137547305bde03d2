"""Run the app on uvicorn: in the foreground (``cvlab serve``) or in a background thread (notebooks, tests)."""
from __future__ import annotations

import ctypes
import logging
import os
import platform
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from uvicorn.protocols.http import h11_impl

from .app import create_app

log = logging.getLogger("cvlab.service")

# ASGI cannot carry a reason phrase, and uvicorn writes the standard one. Azure's gateway answers a bad key with
# "401 Access Denied", which is what the SDK prints ("Operation returned an invalid status code 'Access
# Denied'"), so both of uvicorn's HTTP protocols get that phrase for 401 (the only 401 cvlab sends).
h11_impl.STATUS_PHRASES[401] = b"Access Denied"
try:  # httptools (C) parses requests with less CPU than h11 (pure Python): benchmarks/serve.md
    from uvicorn.protocols.http import httptools_impl
    httptools_impl.STATUS_LINE[401] = b"HTTP/1.1 401 Access Denied\r\n"
    HTTP_PROTOCOL = "httptools"
except ImportError:
    HTTP_PROTOCOL = "h11"

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for the server's process (True when applied).

    glibc gives each thread that allocates its own arena (up to 8 per core) and keeps what it freed there; the
    worker pool grows while slow URL fetches hold threads, and the 10-minute soak's RSS crept +156 MB that way
    (+14 MB with MALLOC_ARENA_MAX=2; benchmarks/soak.md). A MALLOC_ARENA_MAX the user set is left as it is."""
    if "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def _config(app, log_level: str = "warning") -> uvicorn.Config:
    # No access log, so keys in query strings never reach a log (uvicorn re-enables its access log whenever
    # that logger has a handler, so the logger itself is disabled).
    logging.getLogger("uvicorn.access").disabled = True
    return uvicorn.Config(app, http=HTTP_PROTOCOL, loop="asyncio", ws="none", lifespan="off", log_level=log_level,
                          access_log=False, timeout_keep_alive=30)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket. The explicit IPPROTO_TCP matters: asyncio turns Nagle off (TCP_NODELAY) only on
    connections whose socket says proto TCP, and with Nagle on, every response uvicorn writes in two pieces
    (headers, body) waited for the client's delayed ACK (benchmarks/serve.md)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def warn_if_exposed(host: str) -> str | None:
    if host not in LOOPBACK:
        msg = (f"WARNING: binding {host} exposes this endpoint (and your workspace's images) to other machines. "
               "Anyone with the keys can read and change your projects. Use 127.0.0.1 unless you mean it.")
        log.warning(msg)
        return msg
    return None


def env_settings(endpoint: str, keys) -> dict[str, str]:
    """The settings in the labs' ``.env`` spelling and the quickstarts' environment-variable spelling."""
    return {"TrainingEndpoint": endpoint, "TrainingKey": keys.training_key, "PredictionEndpoint": endpoint,
            "PredictionKey": keys.prediction_key, "PredictionResourceId": keys.prediction_resource_id,
            "VISION_TRAINING_ENDPOINT": endpoint, "VISION_TRAINING_KEY": keys.training_key,
            "VISION_PREDICTION_ENDPOINT": endpoint, "VISION_PREDICTION_KEY": keys.prediction_key,
            "VISION_PREDICTION_RESOURCE_ID": keys.prediction_resource_id}


@dataclass
class ServiceHandle:
    """A running endpoint: what the SDK needs to reach it, and ``stop()``."""

    host: str
    port: int
    training_key: str = field(repr=False)
    prediction_key: str = field(repr=False)
    prediction_resource_id: str
    app: object = field(repr=False)
    _server: uvicorn.Server = field(repr=False, default=None)
    _thread: threading.Thread = field(repr=False, default=None)

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # Azure has one endpoint per resource; training and prediction resources usually differ, here they share one.
    training_endpoint = endpoint
    prediction_endpoint = endpoint

    def settings(self) -> dict[str, str]:
        """Endpoint, keys and resource id under the names Microsoft's labs (``TrainingKey``...) and quickstarts
        (``VISION_TRAINING_KEY``...) read, e.g. ``os.environ.update(handle.settings())``."""
        return env_settings(self.endpoint, self)

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_background(ws, port: int = 0, host: str = "127.0.0.1", *, training_key: str | None = None,
                     prediction_key: str | None = None, tier: str | None = None, rate_limits: bool = True,
                     startup_timeout: float = 20.0) -> ServiceHandle:
    """Start the endpoint in a daemon thread (port 0 = any free port) and return once it accepts requests."""
    warn_if_exposed(host)
    limit_malloc_arenas()
    app = create_app(ws, training_key=training_key, prediction_key=prediction_key, tier=tier,
                     rate_limits=rate_limits)
    sock = bind_socket(host, port)
    server = uvicorn.Server(_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="cvlab-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("The cvlab service did not start; see the log above.")
        time.sleep(0.02)
    keys = app.state.ctx.keys
    return ServiceHandle(host, sock.getsockname()[1], keys.training_key, keys.prediction_key,
                         keys.prediction_resource_id, app, server, thread)


def serve_forever(app, sock: socket.socket, log_level: str = "info") -> None:
    """Foreground server on an already bound socket (Ctrl+C stops it)."""
    limit_malloc_arenas()
    uvicorn.Server(_config(app, log_level)).run(sockets=[sock])
