"""Checks on one frame body before pygls sees it: a message it can dispatch, or the errors owed.

pygls assumes a well-formed JSON-RPC object and leaves several malformed requests unanswered (an
editor then waits forever) or fails with a traceback. Here every body that is not a message pygls
handles gets its replies decided up front:

* not UTF-8 JSON (NaN and Infinity included), or JSON but not an object: one error with id null;
* a batch array (LSP has none): one error per request in it, or one null-id error if it has none;
* a request (it has "method" and "id") with a bad id, jsonrpc or method, or naming a notification:
  one error carrying its id when that is a string or a finite number, else null;
* a bad notification or response: no reply (nobody waits for one), only the log line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import attrs
from lsprotocol.types import CANCEL_REQUEST, METHOD_TO_TYPES

__all__ = ["ErrorReply", "Rejected", "check_body", "reply_id"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

# Methods lsprotocol defines as notifications (their message type has no id).
NOTIFICATIONS = frozenset(m for m, types in METHOD_TO_TYPES.items() if "id" not in attrs.fields_dict(types[0]))


@dataclass(frozen=True)
class ErrorReply:
    id: Any
    code: int
    message: str


@dataclass(frozen=True)
class Rejected:
    """A body that goes no further: the replies it is owed (maybe none) and why, for the log."""

    replies: tuple[ErrorReply, ...]
    reason: str


def reply_id(msg_id: Any) -> Any:
    """The id an error reply can carry: the request's own if it is a string or a finite number."""
    if isinstance(msg_id, str | int) or (isinstance(msg_id, float) and math.isfinite(msg_id)):
        return msg_id
    return None


def valid_id(msg_id: Any) -> bool:
    return isinstance(msg_id, str | int) and not isinstance(msg_id, bool)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"), parse_constant=_no_constants)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number"}.get(
        type(value), "null"
    )


def _refuse(msg: dict[str, Any], code: int, reason: str) -> Rejected:
    """A request gets one error with its id; a notification or response only the log line."""
    if "method" in msg and "id" in msg:
        return Rejected((ErrorReply(reply_id(msg["id"]), code, reason),), reason)
    return Rejected((), reason)


def check_body(body: bytes) -> dict[str, Any] | Rejected:
    """The message a body holds, checked far enough that pygls can take it; or what to answer."""
    try:
        msg = _parse(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        reason = f"parse error: {type(exc).__name__}: {exc}"[:300]
        return Rejected((ErrorReply(None, PARSE_ERROR, reason),), reason)
    if isinstance(msg, list):
        reason = "batch messages are not supported"
        replies = tuple(
            ErrorReply(reply_id(m["id"]), INVALID_REQUEST, reason)
            for m in msg
            if isinstance(m, dict) and "method" in m and "id" in m
        )
        return Rejected(replies or (ErrorReply(None, INVALID_REQUEST, reason),), reason)
    if not isinstance(msg, dict):
        reason = f"a message must be a JSON object, not {type(msg).__name__}"
        return Rejected((ErrorReply(None, INVALID_REQUEST, reason),), reason)

    if "id" in msg and not valid_id(msg["id"]):
        return _refuse(msg, INVALID_REQUEST, f"id must be an integer or a string, not {_json_type(msg['id'])}")
    if msg.get("jsonrpc") != "2.0":
        return _refuse(msg, INVALID_REQUEST, 'jsonrpc must be "2.0"')
    if "method" not in msg:
        if "id" not in msg:
            return Rejected((), "message with neither method nor id")
        return msg  # a response to one of our requests
    method = msg["method"]
    if not isinstance(method, str):
        return _refuse(msg, INVALID_REQUEST, f"method must be a string, not {_json_type(method)}")
    if "id" in msg and method in NOTIFICATIONS:
        return _refuse(msg, INVALID_REQUEST, f"{method!r} is a notification: it takes no id")
    if method == CANCEL_REQUEST and not (isinstance(msg.get("params"), dict) and valid_id(msg["params"].get("id"))):
        return Rejected((), "$/cancelRequest without a valid id")  # pygls would look the id up unchecked
    return msg
