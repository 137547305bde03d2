"""Paging a query as Azure does: ``maxCount`` results a page and an opaque continuation token."""
from __future__ import annotations

import base64
import binascii

from cvlab import rules
from cvlab.errors import CvlabError

PAGE = 50            # default maxCount of a query page (as the REST service)
QUERY_ERROR = "BadRequestPredictionInvalidQueryParameters"


def encode_continuation(offset: int) -> str:
    """An opaque continuation token (the same format the REST service uses)."""
    return base64.urlsafe_b64encode(f"offset:{int(offset)}".encode()).decode()


def decode_continuation(token: str | None) -> int:
    """The offset a continuation token stands for (0 for none); a clear error for a token cvlab did not make."""
    if not token:
        return 0
    try:
        kind, value = base64.urlsafe_b64decode(str(token).encode()).decode().split(":")
        if kind == "offset" and int(value) >= 0:
            return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise CvlabError(QUERY_ERROR, "The continuation token is not one cvlab returned: pass the previous result's token "
                     "back unchanged to get the next page.")


def max_count(value, code: str) -> int:
    """``maxCount`` of a query as a page size (default ``PAGE``, at most ``rules.limit("take")``)."""
    cap = rules.limit("take")
    try:
        n = PAGE if value is None else int(value)
    except (TypeError, ValueError):
        raise CvlabError(code, f"maxCount must be a whole number 1..{cap}, not {value!r}.") from None
    if not 0 < n <= cap:
        raise CvlabError(code, f"maxCount must be 1..{cap}, got {n}: page with the continuation token instead.")
    return n
