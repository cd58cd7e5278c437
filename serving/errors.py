"""TF Serving's status codes and the one exception type the server raises.

TF Serving reports every failure as an `absl::Status` (a canonical code and a message). The REST
API turns it into `{"error": "<message>"}` with an HTTP status from a fixed table
(`model_servers/http_server.cc::ToHTTPStatusCode`); the gRPC API sends the same code and message
as the call's status, cutting messages longer than 1024 characters
(`model_servers/grpc_status_util.cc`). `ServingError` carries the code and message through the
server, and the two API layers map it in one place each.
"""

from __future__ import annotations

import enum


class Code(enum.IntEnum):
    """Canonical status codes (`tensorflow.error.Code`, equal to gRPC's and absl's)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# model_servers/http_server.cc::ToHTTPStatusCode; CANCELLED is nginx's 499 "client closed request".
_HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

GRPC_MESSAGE_LIMIT = 1024


def http_status(code: Code) -> int:
    """The HTTP status TF Serving's REST API answers for a status code."""
    return _HTTP_STATUS.get(Code(code), 500)


def grpc_message(message: str) -> str:
    """A status message as TF Serving's gRPC API sends it (cut after 1024 characters)."""
    if len(message) > GRPC_MESSAGE_LIMIT:
        return message[:GRPC_MESSAGE_LIMIT] + "...TRUNCATED"
    return message


class ServingError(Exception):
    """A failed request or load: a canonical status `code` and TF Serving's `message`."""

    def __init__(self, code: Code, message: str):
        super().__init__(message)
        self.code = Code(code)
        self.message = message

    def to_string(self) -> str:
        """`absl::Status::ToString()`: TF Serving nests statuses in messages this way."""
        return f"{self.code.name}: {self.message}"

    def __repr__(self) -> str:
        return f"ServingError({self.code.name}, {self.message!r})"


def invalid_argument(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(Code.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(Code.FAILED_PRECONDITION, message)
