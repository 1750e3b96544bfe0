"""The bridge's pygls protocol: each checked message dispatched, each request answered exactly once.

pygls's own entry point (structure_message as a json object_hook, then handle_message) drops some
malformed requests without a reply and logs tracebacks for others. Here a body goes through
lsp/inbound.py first, then this class structures it, answers what cannot be dispatched with its id,
and logs one line per bad message.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any

from cattrs import transform_error
from cattrs.errors import BaseValidationError
from codeassist.lsp.framing import FramingError
from codeassist.lsp.inbound import Rejected, check_body, reply_id
from codeassist.lsp.log_format import one_line
from lsprotocol import types
from lsprotocol.types import ResponseErrorMessage
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage

__all__ = ["BridgeProtocol"]

log = logging.getLogger("codeassist.lsp")

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseValidationError):
        return "; ".join(transform_error(exc)[:3])
    return f"{type(exc).__name__}: {exc}"


class BridgeProtocol(LanguageServerProtocol):
    # -- entry points for the stdio loop ------------------------------------------------------------
    def receive(self, body: bytes) -> None:
        """One frame body. Never raises, except the SystemExit with which pygls handles "exit"."""
        checked = check_body(body)
        if isinstance(checked, Rejected):
            log.warning("bad message: %s", one_line(checked.reason))
            for reply in checked.replies:
                self.send_error(reply.id, reply.code, reply.message)
            return
        self._dispatch(checked)

    def reject_frame(self, error: FramingError) -> None:
        log.warning("bad frame: %s", one_line(error.message))
        self.send_error(None, error.code, error.message)

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        # A plain dict: pygls's response types cannot carry the odd ids some errors echo.
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": one_line(message)}})

    # -- dispatch ----------------------------------------------------------------------------------
    def _has_handler(self, method: str) -> bool:
        return method == types.CANCEL_REQUEST or method in self.fm.builtin_features or method in self.fm.features

    def _dispatch(self, msg: dict[str, Any]) -> None:
        method: str | None = msg.get("method")
        request_id = msg["id"] if method is not None and "id" in msg else None
        is_request = request_id is not None
        if self._shutdown and method != types.EXIT:
            self._refuse(msg, INVALID_REQUEST, "the server is shutting down")
            return
        if method is not None and not self._has_handler(method):
            if is_request:
                self._refuse(msg, METHOD_NOT_FOUND, f"Method Not Found: {method}")
            elif not method.startswith("$/"):  # "$/" notifications may be ignored silently
                log.warning("ignored notification for unknown method %r", one_line(method, 80))
            return
        try:
            message = self._structure(msg)
        except Exception as exc:
            self._refuse(msg, INVALID_PARAMS, f"invalid params for {method or 'response'}: {_describe(exc)}")
            return
        try:
            self.handle_message(message)
        except Exception as exc:  # pygls answers handler failures itself; this is a failure around them
            log.error("%s failed: %s", one_line(method, 80), one_line(repr(exc)))
            if is_request:
                self.send_error(request_id, INTERNAL_ERROR, f"internal error: {exc!r}")

    def _refuse(self, msg: dict[str, Any], code: int, reason: str) -> None:
        """One log line; an error with its id if the message is a request."""
        is_request = "method" in msg and "id" in msg
        kind = "request" if is_request else "notification" if "method" in msg else "response"
        log.warning("%s %r refused: %s", kind, one_line(msg.get("method", msg.get("id")), 80), one_line(reason))
        if is_request:
            self.send_error(reply_id(msg["id"]), code, reason)

    def _structure(self, msg: dict[str, Any]) -> Any:
        """pygls's structure_message for a top-level message, without its traceback logging."""
        kind: Any
        if "method" not in msg:
            kind = (
                ResponseErrorMessage
                if "error" in msg
                else (self._result_types.pop(msg["id"], None) or JsonRPCResponseMessage)
            )
        else:
            default = JsonRPCRequestMessage if "id" in msg else JsonRPCNotification
            kind = self.get_message_type(msg["method"]) or default
        return self._converter.structure(msg, kind)

    def _run_generator(
        self, future: Future[Any] | None, *, gen: Generator[Any, Any, Any], result_future: Future[Any]
    ) -> None:
        # pygls calls future.result() on a cancelled step (a handler cancelled while pending, or at
        # exit), which raises out of the done-callback: cancel the whole handler instead.
        if future is not None and future.cancelled():
            gen.close()
            result_future.cancel()
            return
        super()._run_generator(future, gen=gen, result_future=result_future)

    # -- replies -----------------------------------------------------------------------------------
    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """pygls's version, with one log line instead of a traceback per failed request."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.send_error(msg_id, REQUEST_CANCELLED, f"request {msg_id!r} was cancelled")
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(exc, JsonRpcException):
            log.warning("request %r failed: %s", msg_id, one_line(exc))
            self._send_response(msg_id, error=exc.to_response_error())
        else:
            log.error("request %r failed: %s", msg_id, one_line(repr(exc)))
            self.send_error(msg_id, INTERNAL_ERROR, f"internal error: {exc!r}")
