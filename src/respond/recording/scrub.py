"""Keep secrets out of recordings: headers, body fields and URL query parameters that look like credentials.

A name is split into lower-case words (`x-api-key` -> x, api, key; `accessToken` -> access, token).
It is secret when it names a credential: any word among SECRET_WORDS, a final word `token` (singular:
`max_tokens`, `prompt_tokens`, `token_count` are not secrets), or a compound ending in `key` (`api_key`,
`private_key`; a bare `key` is a filter attribute in OpenAI bodies, except in URL query strings).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DROPPED_HEADERS = frozenset({
    "authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "set-cookie", "x-goog-api-key",
})
SECRET_WORDS = frozenset({
    "secret", "secrets", "password", "passwd", "apikey", "credential", "credentials", "cookie", "cookies",
    "authorization", "auth", "bearer",
})

REDACTED = "<redacted>"  # what a known secret value is replaced with

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _SPLIT.split(_CAMEL.sub("_", name)) if w]


def is_secret_name(name: str, *, bare_key: bool = False) -> bool:
    """True when a header, field or query parameter called `name` likely holds a credential."""
    if name.lower() in DROPPED_HEADERS:
        return True
    words = _words(name)
    if not words:
        return False
    if any(w in SECRET_WORDS for w in words):
        return True
    last = words[-1]
    if last == "token":
        return True
    if last == "key":
        return bare_key or len(words) > 1
    return False


def scrub_headers(headers: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (headers or {}).items() if not is_secret_name(k, bare_key=True)}


# Request fields whose names sound like credentials but are not (OpenAI parameters).
NOT_SECRETS = frozenset({"prompt_cache_key", "idempotency_key"})
# Containers of user-defined names (JSON schemas, tool arguments): a property called `password` there is
# part of the request, not a credential, and dropping it would let different requests hash alike.
OPAQUE_KEYS = frozenset({"parameters", "schema", "json_schema", "properties", "input_schema", "inputSchema",
                         "arguments", "metadata"})


def scrub_body(value: Any) -> Any:
    """A copy of `value` without the dict entries whose key looks like a credential (recursively, but not
    inside JSON schemas and tool arguments)."""
    if isinstance(value, dict):
        return {k: (v if k in OPAQUE_KEYS else scrub_body(v)) for k, v in value.items()
                if not (isinstance(k, str) and k not in NOT_SECRETS and is_secret_name(k))}
    if isinstance(value, list):
        return [scrub_body(v) for v in value]
    return value


def redact_values(value: Any, secrets: frozenset[str]) -> Any:
    """A copy of `value` with every occurrence of a known secret (an API key) inside strings replaced,
    for text the upstream may echo back, such as an error message (see also `respond.redact`)."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):  # a longer secret may contain a shorter one
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact_values(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_values(v, secrets) for v in value]
    return value


def scrub_url(url: str) -> str:
    """Drop user:password@ and secret-looking query parameters from a URL (or a bare path with a query)."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not is_secret_name(k, bare_key=True)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
