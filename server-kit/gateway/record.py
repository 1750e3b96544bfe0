"""What one completion request did, and why it was refused: :class:`RequestRecord` and :class:`Reason`.

The proxy fills one record per request as it goes (who, which class and model, the estimated cost, the queue
wait, the replica, the first token, the status, the streamed events and bytes) and writes the audit line and
the metrics from it once, when the request is over. The record holds no prompt text, completion text or key:
only the user's pseudonym, the key's id and counts, so whatever is written from it cannot leak them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Reason", "Rejected", "RequestRecord"]


class Reason(StrEnum):
    """Why a request was refused or did not end normally: the audit ``reason``, the ``reason`` label of
    ``codeassist_gateway_rejections_total`` and the error ``type`` in the JSON answer (the values are on the wire)."""

    # Refused before the upstream (answered with an error status).
    AUTH = "auth"
    TOO_LARGE = "too_large"
    BAD_REQUEST = "bad_request"  # malformed JSON, a field out of range (max_tokens, n, priority...), x-priority
    RATE_LIMITED = "rate_limit"
    QUEUE_FULL = "queue_full"  # the gateway's queue, or this user's share of it
    QUEUE_TIMEOUT = "queue_timeout"
    NO_UPSTREAM = "no_upstream"
    UPSTREAM_TIMEOUT = "upstream_timeout"  # no status and first chunk within first_token_timeout_s
    UPSTREAM_UNREACHABLE = "upstream_error"  # every live replica failed to connect or broke the protocol
    # Ended abnormally once the response had begun.
    UPSTREAM_DIED = "upstream_died_mid_stream"
    CLIENT_STALLED = "client_stalled"  # took nothing for the client write timeout: cut off
    CLIENT_DISCONNECT = "client_disconnect"


class Rejected(Exception):
    """A request refused before its response began: answered ``status`` with ``message`` (and Retry-After)."""

    def __init__(self, status: int, message: str, reason: Reason, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.retry_after = status, message, reason, retry_after


@dataclass(slots=True, eq=False)
class RequestRecord:
    """One completion request, filled in stage by stage (times are ``time.perf_counter()`` seconds)."""

    cls: str  # the priority class (the route's default until the request is parsed)
    t0: float  # when the request was handed to the proxy
    user: str | None = None  # the user's pseudonym (an HMAC), None until the key is verified
    key_id: str | None = None
    model: str | None = None  # as the client named it, cut to 128 characters
    bytes_in: int = 0  # request body
    prompt_tokens: int | None = None  # estimated (≈ 4 characters a token)
    cost: int = 0  # tokens charged to the rate limit and the scheduler
    admitted: bool = False  # past auth, parsing and the rate limit: counted as a request of the user
    status: int | None = None  # the answer's status (None: none was decided, accounted as 500)
    reason: Reason | None = None
    rejected: bool = False  # refused by the gateway (``reason`` says why)
    client_gone: bool = False  # the client hung up after admission
    queue_wait_s: float | None = None  # admission to an upstream slot
    replica: str | None = None
    ttft_s: float | None = None  # status and first chunk from the upstream
    latency_s: float | None = None  # set when the request is over
    upstream_errors: tuple[tuple[str, str], ...] = ()  # (replica, "connect" | "protocol" | "timeout") per failure
    sse_events: int = 0  # ``data: `` occurrences relayed (the closing ``[DONE]`` included)
    bytes_out: int = 0  # response body bytes relayed from the upstream
    completion_tokens: int | None = None

    def refuse(self, r: Rejected) -> None:
        self.status, self.reason, self.rejected = r.status, r.reason, True

    def end(self, status: int, reason: Reason) -> None:
        self.status, self.reason = status, reason

    def audit_fields(self) -> dict[str, Any]:
        """The audit line's fields (``None`` ones are left out of the line)."""
        return {
            "user": self.user,
            "key_id": self.key_id,
            "model": self.model,
            "class": self.cls,
            "status": self.status,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": None if self.latency_s is None else round(self.latency_s * 1000, 2),
            "ttft_ms": None if self.ttft_s is None else round(self.ttft_s * 1000, 2),
            "replica": self.replica,
            "reason": None if self.reason is None else self.reason.value,
        }
