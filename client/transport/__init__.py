"""Transports to an OpenAI-compatible completion server."""

from codeassist.client.transport.base import StreamChunk, Transport, TransportError
from codeassist.client.transport.http import HttpTransport

__all__ = ["HttpTransport", "StreamChunk", "Transport", "TransportError"]
