"""One error type for every rule violation, carrying Azure's error code so the REST face can send it verbatim."""
from __future__ import annotations

# HTTP status by code prefix. Azure lists the codes (CustomVisionErrorCodes,
# https://learn.microsoft.com/rest/api/customvision/) but not each one's status: this mapping is cvlab's.
_STATUS_BY_PREFIX = (
    ("BadRequest", 400),
    ("Forbidden", 403),
    ("NotFound", 404),
    ("Conflict", 409),
    ("UnsupportedMediaType", 415),
    ("Error", 500),
)


def status_for_code(code: str) -> int:
    """HTTP status for an Azure CustomVisionErrorCodes value (400 when the prefix is unknown)."""
    for prefix, status in _STATUS_BY_PREFIX:
        if code.startswith(prefix):
            return status
    return 400


class CvlabError(Exception):
    """A rule violation or bad input: `code` is Azure's error code, `message` tells the learner what to do."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else status_for_code(code)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"CvlabError({self.code!r}, {self.message!r}, status={self.status})"

    def to_dict(self) -> dict:
        """Azure's CustomVisionError body: {"code", "message"}."""
        return {"code": self.code, "message": self.message}
