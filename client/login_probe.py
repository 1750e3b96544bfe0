"""A first login: finding the key in what was pasted or piped, and asking the server what it needs (no key at
all, a missing ``/v1``, plain HTTP on an https:// URL) before a key is sent anywhere."""

from __future__ import annotations

import re
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from codeassist.client.auth import ssl_verify
from codeassist.client.transport.base import TransportError

if TYPE_CHECKING:
    import httpx

__all__ = ["find_key", "needs_key", "plain_http_message", "plain_http_url"]


# -- a first login: what the developer typed or pasted -------------------------------------------
KEY_MIN_CHARS = 16
_KEY_TOKEN = re.compile(r"[A-Za-z0-9._~+/:-]+=*")  # API keys: URL/base64-safe characters, maybe = padding


def _key_like(token: str) -> bool:
    return (
        len(token) >= KEY_MIN_CHARS
        and _KEY_TOKEN.fullmatch(token) is not None
        and "://" not in token
        and any(c.isalnum() for c in token)
    )


def find_key(text: str) -> tuple[str, int] | None:
    """The first API key in pasted or piped text, and its 1-based line number; None when there is none.

    A key is a whitespace-free token of 16+ characters, alone on its line (``server-kit keys add`` prints the
    key so, after a description line), or the last token of a labelled line such as ``key for carol: ca-…``.
    The labelled form needs the ``:``/``=`` and a digit, so that a sentence ending in a long word is not a key.
    """
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if len(words) == 1 and _key_like(words[0]):
            return words[0], number
        labelled = len(words) > 1 and words[-2].endswith((":", "="))
        if labelled and _key_like(words[-1]) and any(c.isdigit() for c in words[-1]):
            return words[-1], number
    return None


def plain_http_message(http_url: str) -> str:
    return (
        f"this server speaks plain HTTP; use {http_url} (only on this machine or a trusted network) or put TLS in front"
    )


def _not_tls_reply(exc: BaseException) -> bool:
    """A TLS failure other than certificate verification: what an HTTP answer to a ClientHello looks like.

    (A real TLS server with an untrusted certificate must not be probed with plain HTTP: some answer it with a
    400 page, which would look like a plain-HTTP server.)"""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return not isinstance(seen, ssl.SSLCertVerificationError)
        seen = seen.__cause__ or seen.__context__
    return False


async def plain_http_url(url: str, timeout: float = 3.0) -> str | None:
    """``url`` with http:// when its https:// port answers plain HTTP (the raw ``[SSL: WRONG_VERSION_NUMBER]``
    case); None otherwise. Sends no key."""
    import httpx

    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        return None
    netloc = parts.netloc if parts.port else f"{parts.netloc}:443"
    http_url = urlunsplit(("http", netloc, parts.path, parts.query, parts.fragment)).rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            await client.get(http_url + "/models")
    except httpx.HTTPError:
        return None
    return http_url


async def _v1_hint(client: httpx.AsyncClient, url: str) -> str:
    """Why ``url``/models is 404: most often the base URL lacks ``/v1``. Tries ``url``/v1/models to say so."""
    import httpx

    said = f"GET {url}/models answered HTTP 404"
    if url.endswith("/v1"):
        return f"{said}: is {url} an OpenAI-compatible server (vLLM, llama-server, the server-kit gateway)?"
    try:
        status = (await client.get(url + "/v1/models")).status_code
    except httpx.HTTPError:
        status = None
    if status in (200, 401, 403):
        return (
            f"{said}; {url}/v1/models answers (HTTP {status}): the OpenAI-compatible base URL ends in /v1: "
            f"codeassist login {url}/v1"
        )
    also = "fails" if status is None else f"answers HTTP {status}"
    return (
        f"{said}, and {url}/v1/models {also} too: is this an OpenAI-compatible server (vLLM, llama-server, "
        "the server-kit gateway)?"
    )


async def needs_key(url: str, ca_bundle: str = "", timeout: float = 5.0) -> bool:
    """Ask ``/models`` with no key: True when the server wants one (401/403), False when it answers without.

    Raises ValueError when ``url`` is not the server's OpenAI-compatible base (a missing ``/v1``, https:// to a
    plain-HTTP server: the message says what to type instead) and TransportError when it cannot be reached.
    """
    import httpx

    url = url.rstrip("/")
    async with httpx.AsyncClient(verify=ssl_verify(ca_bundle), timeout=timeout) as client:
        try:
            resp = await client.get(url + "/models")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # An HTTP server answers a ClientHello with text (a TLS error), or waits for a request line that
            # never comes (the handshake times out): both ways ask it in plain HTTP.
            suspect = isinstance(exc, httpx.ConnectTimeout) or _not_tls_reply(exc)
            if suspect and (plain := await plain_http_url(url)) is not None:
                raise ValueError(plain_http_message(plain)) from None
            raise TransportError("connect", f"cannot reach {url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise TransportError("connect", f"cannot reach {url}: {exc!r}") from None
        if resp.status_code == 404:
            raise ValueError(await _v1_hint(client, url))
    if resp.status_code in (401, 403):
        return True
    if resp.status_code != 200:
        raise TransportError("http", f"GET {url}/models answered HTTP {resp.status_code}", resp.status_code)
    return False
