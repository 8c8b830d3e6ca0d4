"""Domain errors raised by services and selectors; webapp.api_errors maps them to HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose; the message is shown to people unchanged."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        """The JSON body of the API error response."""
        body: dict = {"error": type(self).__name__, "message": self.message}
        if self.field:
            body["fields"] = {self.field: [self.message]}
        return body


class InvalidInput(DomainError):
    """The request is wrong; nothing was changed."""


class NotFound(DomainError):
    """The named object does not exist."""


class Conflict(DomainError):
    """The request clashes with the current state (a name already taken, a busy object)."""


class PreconditionFailed(Conflict):
    """An If-Match precondition failed: the object changed since the version the client read."""


class HostOffline(DomainError):
    """No agent is connected for the host, or it went away before answering."""
