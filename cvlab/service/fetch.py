"""Fetch an image by URL for the *url* operations (classify/detect_image_url, create_images_from_urls,
quick_test_image_url) like a careful public-web client, so a URL can neither read the machine's own services nor
hold the server:

- http and https only, no ``user:password@`` in the URL, and nothing of the caller's is ever sent (no cookies, no
  auth, no proxy or .netrc from the environment: a bare GET with a User-Agent);
- the host is resolved once, every address it resolves to is checked, and the connection goes to the checked
  address (no second lookup that DNS rebinding could answer differently). Loopback, private, link-local,
  shared, multicast, reserved and unspecified addresses (127.1, 0.0.0.0, [::1], ::ffff:127.0.0.1, 2130706433,
  0x7f000001, localhost...) are refused unless ``CVLAB_ALLOW_PRIVATE_URLS`` allows them (``private_allowed``);
- at most ``MAX_REDIRECTS`` redirects, each target checked the same way;
- one deadline for the whole fetch (resolving, connecting, headers, body, redirects): a source that drips one
  byte at a time is cut off at ``DEADLINE_SECONDS`` whatever it does;
- at most ``MAX_BYTES`` of the route's size cap are read;
- at most ``PER_KEY_FETCHES`` fetches at once per key (a seat's training or prediction key) and
  ``TOTAL_FETCHES`` in all, below the server's 40 worker threads: beyond that the request is answered 429 at
  once, so one seat's slow sources never take the threads another seat's requests need;
- every way a fetch can fail to get an image (a refused address, a closed port, an HTTP error, a timeout, too
  many redirects) gives the same message, so the endpoint cannot be used to map ports or hosts; the real reason
  goes to the server log.
"""
from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

from cvlab.errors import CvlabError

log = logging.getLogger("cvlab.service")

DEADLINE_SECONDS = 10.0   # the whole fetch, redirects included
MAX_REDIRECTS = 3
PER_KEY_FETCHES = 4       # concurrent fetches per key; the whole server runs 40 worker threads
TOTAL_FETCHES = 16
ALLOW_PRIVATE_ENV = "CVLAB_ALLOW_PRIVATE_URLS"
_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_USER_AGENT = "cvlab-service"

UNREACHABLE = ("Could not fetch an image from this URL. cvlab fetches publicly reachable http(s) image URLs only "
               f"(no loopback, private or link-local hosts unless {ALLOW_PRIVATE_ENV}=1 is set for a lab image "
               f"server, at most {MAX_REDIRECTS} redirects, within {DEADLINE_SECONDS:g} s, HTTP 200). Check that the "
               "URL opens in a browser, or upload the bytes instead.")


class FetchFailed(CvlabError):
    """The one error for a source that gave no image; ``reason`` is for the server log only."""

    def __init__(self, reason: str):
        super().__init__("BadRequestImageUrl", UNREACHABLE)
        self.reason = reason


class FetchesBusy(CvlabError):
    """Too many fetches in flight for this key (or in all): 429 with Retry-After, like the gateway's rate limit."""

    retry_after = 1

    def __init__(self, message: str):
        super().__init__("429", message, status=429)


# ---- which addresses may be fetched -----------------------------------------------------------------------------
def private_allowed(address: ipaddress._BaseAddress, port: int) -> bool:
    """``CVLAB_ALLOW_PRIVATE_URLS`` (``cvlab.config``): unset/0 refuses every non-public address; 1 (or
    true/yes/all) allows them all (a lab that serves its own images); otherwise a comma list of what to allow:
    addresses or networks, each optionally with a port (``127.0.0.1:8000``, ``10.0.0.0/8``, ``[::1]:8000``)."""
    from cvlab.config import settings
    value = settings().allow_private_urls
    if value.lower() in ("", "0", "false", "no", "off"):
        return False
    if value.lower() in ("1", "true", "yes", "on", "all"):
        return True
    for entry in (e.strip() for e in value.split(",") if e.strip()):
        host, want_port = entry, None
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            want_port = rest[1:] if rest.startswith(":") else None
        elif entry.count(":") == 1:
            host, want_port = entry.split(":")
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            log.warning("%s: %r is not an address or network; ignored", ALLOW_PRIVATE_ENV, entry)
            continue
        if address in network and (want_port is None or want_port == str(port)):
            return True
    return False


def _public(address: ipaddress._BaseAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None) or getattr(address, "sixtofour", None)
    if mapped is not None:
        return _public(mapped)
    return address.is_global and not address.is_multicast


_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cvlab-resolve")


def _checked_address(host: str, port: int, deadline: float) -> tuple[int, str]:
    """(family, address) to connect to: every address ``host`` resolves to must be allowed."""
    try:
        infos = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM).result(_left(deadline))
    except FutureTimeout:
        raise FetchFailed(f"resolving {host!r} took longer than the deadline") from None
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve {host!r}: {exc}") from None
    chosen = None
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not _public(address) and not private_allowed(address, port):
            raise FetchFailed(f"{host!r} resolves to {address}, which is not a public address")
        chosen = chosen or (family, sockaddr[0])
    if chosen is None:
        raise FetchFailed(f"{host!r} resolves to no address")
    return chosen


# ---- one deadline for every socket operation -------------------------------------------------------------------
def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed("the deadline passed")
    return left


class _Deadline:
    """Every blocking call of the socket waits at most until the fetch's deadline (not a fresh timeout per read,
    which a source sending one byte just in time would renew forever)."""

    deadline = float("inf")

    def _arm(self):
        self.settimeout(_left(self.deadline))

    def recv(self, *a):
        self._arm()
        return super().recv(*a)

    def recv_into(self, *a):
        self._arm()
        return super().recv_into(*a)

    def sendall(self, *a):
        self._arm()
        return super().sendall(*a)

    def read(self, *a):  # TLS only
        self._arm()
        return super().read(*a)

    def do_handshake(self, *a):  # TLS only
        self._arm()
        return super().do_handshake(*a)


class _DeadlineSocket(_Deadline, socket.socket):
    pass


class _DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    pass


_TLS = ssl.create_default_context()
_TLS.sslsocket_class = _DeadlineSSLSocket


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection to an address checked beforehand; Host, SNI and the certificate check use the name."""

    def __init__(self, scheme: str, host: str, port: int, address: tuple[int, str], deadline: float):
        super().__init__(host, port)
        self.scheme, self.address, self.deadline = scheme, address, deadline

    def connect(self):
        family, ip = self.address
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        sock.deadline = self.deadline
        try:
            sock.settimeout(_left(self.deadline))
            sock.connect((ip, self.port))
            if self.scheme == "https":
                sock = _TLS.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
                sock.deadline = self.deadline
                sock.do_handshake()
        except BaseException:
            sock.close()
            raise
        self.sock = sock


# ---- the fetch --------------------------------------------------------------------------------------------------
def fetch_image(url: str, max_bytes: int, seat=None) -> bytes:
    """The bytes at ``url``, or ``CvlabError`` saying what to fix. ``seat`` is who counts
    against the concurrency caps (``seat(ctx, api)``); None for callers outside the service."""
    with fetch_slot(seat):
        return _fetch(url, max_bytes, time.monotonic() + DEADLINE_SECONDS)


def fetch_images(urls: list[str], max_bytes: int, seat=None) -> list[bytes | CvlabError]:
    """A batch (create_images_from_urls): one slot and one deadline for the whole batch, so a batch of slow
    sources costs one ``DEADLINE_SECONDS``, not one per URL; each entry is the bytes or the error for that URL."""
    out: list[bytes | CvlabError] = []
    with fetch_slot(seat):
        deadline = time.monotonic() + DEADLINE_SECONDS
        for url in urls:
            try:
                out.append(_fetch(url, max_bytes, deadline))
            except CvlabError as exc:
                out.append(exc)
    return out


def _fetch(url: str, max_bytes: int, deadline: float) -> bytes:
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = _get(current, max_bytes, deadline)
            if status in _REDIRECTS and location:
                current = urljoin(current, location)
                continue
            if status != 200:
                raise FetchFailed(f"HTTP {status}")
            return body
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")
    except FetchFailed as exc:
        log.info("URL fetch of %r failed: %s", url[:300], exc.reason)
        raise


def _target(url: str) -> tuple[str, str, int, str]:
    if not url or not isinstance(url, str):
        raise CvlabError("BadRequestImageUrl", "The request body needs {\"url\": \"http(s)://...\"}.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchFailed("the URL does not parse") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise CvlabError("BadRequestImageUrl", f"Only http and https image URLs can be fetched, not "
                         f"'{scheme or 'no scheme'}:'. Upload the bytes instead for local files.")
    if parts.username is not None or parts.password is not None:
        raise CvlabError("BadRequestImageUrl", "Remove the user:password@ part of the image URL: cvlab never sends "
                         "credentials to an image source. Use a publicly readable URL.")
    if not parts.hostname:
        raise FetchFailed("no host")
    path = parts.path or "/"
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path + (
        f"?{parts.query}" if parts.query else "")


def _get(url: str, max_bytes: int, deadline: float) -> tuple[int, str | None, bytes]:
    """One GET: (status, Location, body); the body only for a 200, at most ``max_bytes``."""
    scheme, host, port, path = _target(url)
    conn = _Connection(scheme, host, port, _checked_address(host, port, deadline), deadline)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (("User-Agent", _USER_AGENT), ("Accept", "image/*"), ("Accept-Encoding", "identity"),
                            ("Connection", "close")):
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        if resp.status != 200:
            return resp.status, resp.getheader("Location"), b""
        declared = resp.getheader("Content-Length")
        if declared and declared.strip().isdigit() and int(declared) > max_bytes:
            raise _too_big(int(declared), max_bytes)
        data = bytearray()
        while True:
            chunk = resp.read1(_CHUNK)
            if not chunk:
                return 200, None, bytes(data)
            data += chunk
            if len(data) > max_bytes:
                raise _too_big(len(data), max_bytes)
    except CvlabError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if time.monotonic() >= deadline:
            raise FetchFailed(f"not done within {DEADLINE_SECONDS:g} s") from None
        raise FetchFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


def _too_big(size: int, limit: int) -> CvlabError:
    return CvlabError("BadRequestImageSizeBytes", f"The image at this URL is larger than {limit // (1024 * 1024)} MB "
                      f"({'at least ' if size > limit else ''}{size} bytes). Resize or recompress it.")


# ---- how many fetches at once -----------------------------------------------------------------------------------
_slots = threading.Lock()
_in_flight: dict = {}


def seat(ctx, api: str) -> tuple[int, str]:
    """Who a fetch counts against: the caller's context (a workshop seat's, or the endpoint's) and which of its
    keys it used ("training" or "prediction")."""
    return id(ctx), api


@contextmanager
def fetch_slot(seat):
    """One of the key's ``PER_KEY_FETCHES`` slots and one of the server's ``TOTAL_FETCHES``, or 429 at once."""
    with _slots:
        total = sum(_in_flight.values())
        mine = _in_flight.get(seat, 0)
        if total >= TOTAL_FETCHES or mine >= PER_KEY_FETCHES:
            who = "this key" if mine >= PER_KEY_FETCHES else "the server"
            raise FetchesBusy(f"Too many image URLs are being fetched at once for {who} ("
                              f"{mine if mine >= PER_KEY_FETCHES else total} of at most "
                              f"{PER_KEY_FETCHES if mine >= PER_KEY_FETCHES else TOTAL_FETCHES}). Please retry after "
                              "1 second, or upload the image bytes instead.")
        _in_flight[seat] = mine + 1
    try:
        yield
    finally:
        with _slots:
            _in_flight[seat] -= 1
            if not _in_flight[seat]:
                del _in_flight[seat]
