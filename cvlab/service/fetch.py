"""Fetch an image by URL for the *url* operations: http(s) only, bounded size, bounded time."""
from __future__ import annotations

from urllib.parse import urlparse

import requests

from cvlab.errors import CvlabError

DEFAULT_TIMEOUT = 10.0  # seconds, connect and per read
_CHUNK = 64 * 1024


def fetch_image(url: str, max_bytes: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Download ``url`` and return its bytes; raise ``CvlabError`` saying what to fix otherwise."""
    if not url or not isinstance(url, str):
        raise CvlabError("BadRequestImageUrl", "The request body needs {\"url\": \"http(s)://...\"}.")
    scheme = urlparse(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise CvlabError("BadRequestImageUrl", f"Only http and https image URLs can be fetched, not "
                         f"'{scheme or 'no scheme'}:'. Upload the bytes instead for local files.")
    try:
        with requests.get(url, stream=True, timeout=timeout,
                          headers={"User-Agent": "cvlab-service"}) as resp:
            if resp.status_code != 200:
                raise CvlabError("BadRequestImageUrl", f"Fetching {url} returned HTTP {resp.status_code}; the URL "
                                 "must point at a publicly readable image.")
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(url, int(declared), max_bytes)
            data = bytearray()
            for chunk in resp.iter_content(_CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise _too_big(url, len(data), max_bytes)
            return bytes(data)
    except CvlabError:
        raise
    except requests.Timeout:
        raise CvlabError("BadRequestImageUrl", f"Fetching {url} timed out after {timeout:g} s.") from None
    except requests.RequestException as exc:
        raise CvlabError("BadRequestImageUrl", f"Could not fetch {url}: {type(exc).__name__}.") from None


def _too_big(url: str, size: int, limit: int) -> CvlabError:
    return CvlabError("BadRequestImageSizeBytes", f"The image at {url} is larger than {limit // (1024 * 1024)} MB "
                      f"({'at least ' if size > limit else ''}{size} bytes). Resize or recompress it.")
