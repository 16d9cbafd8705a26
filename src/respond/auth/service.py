"""`Authenticator`: an `Authorization` header -> the `Principal` the request acts for, or a 401.

Auth off (the zero-config default): every request is the implicit owner "default".
Auth on, `Authorization: Bearer <token>`, in this order:
1. sha256 of the token, looked up in a dict of the static keys (config `auth.api_keys`, $RESPOND_API_KEYS),
   the admin keys, and the database keys this process has recently confirmed: one hash + one dict lookup.
2. A JWT (three dot-separated parts) when `auth.jwt` is configured: verified (`jwt.py`).
3. Otherwise the `api_keys` table (keys made through the admin API), by digest. A hit is remembered for
   `auth.key_cache_seconds`; a revoke in this process forgets it at once (so the key stops working on the
   next request); another process notices within `key_cache_seconds`. Misses are not remembered (a key
   just created elsewhere works at once), so an unknown key costs one indexed query.
Keys are never kept or logged in clear; errors quote at most the masked key (as OpenAI does).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from respond.auth.jwt import JWTVerifier, TokenRejected
from respond.auth.keys import configured_hash, display_prefix, generate_key, hash_key, mask
from respond.auth.quotas import Quotas
from respond.config import AuthConfig
from respond.errors import APIError, NotFound
from respond.ids import new_id
from respond.storage.api_keys_repo import ApiKeyStore
from respond.storage.tables import DEFAULT_OWNER

log = logging.getLogger("respond.auth")

ADMIN_OWNER = "admin"  # what an admin key acts as outside /v1/admin (its own objects, nobody else's)


@dataclass(frozen=True)
class Principal:
    owner: str
    admin: bool = False
    key_id: str | None = None  # database keys: their id (static keys: "static", JWT: None)
    # quotas (auth/quotas.py), counted per `quota_key` (one per key; per owner for JWTs)
    quota_key: str | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def limited(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


IMPLICIT = Principal(DEFAULT_OWNER)


class AuthError(APIError):
    """Missing or bad credentials: 401 in the OpenAI envelope."""

    status_code = 401
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_api_key")


class PermissionDenied(APIError):
    status_code = 403
    error_type = "invalid_request_error"


MISSING = ("You didn't provide an API key. You need to provide your API key in an Authorization header using "
           "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")


@dataclass
class _Cached:
    principal: Principal
    until: float


class Authenticator:
    def __init__(self, config: AuthConfig, keys: ApiKeyStore | None = None) -> None:
        self.config = config
        self.active = config.active
        self.keys = keys
        self.jwt = JWTVerifier(config.jwt) if config.jwt is not None else None
        self._static: dict[str, Principal] = {}
        for number, entry in enumerate(config.api_keys):
            digest = entry.key_sha256 or hash_key(entry.key or "")
            self._static[digest] = Principal(entry.owner, key_id="static", quota_key=f"static:{number}",
                                             requests_per_minute=entry.requests_per_minute,
                                             tokens_per_minute=entry.tokens_per_minute)
        for value in config.admin_keys:
            self._static[configured_hash(value)] = Principal(ADMIN_OWNER, admin=True, key_id="admin")
        if self.active and not self._static and self.jwt is None:
            log.warning("authentication is on but no key, admin key or jwt is configured: only keys already in "
                        "the database work")
        self.quotas = Quotas()
        self._cache: dict[str, _Cached] = {}
        self._revocations = 0  # a lookup that raced a revoke in this process is not remembered
        self.cache_seconds = config.key_cache_seconds

    async def close(self) -> None:
        if self.jwt is not None:
            await self.jwt.close()

    async def authenticate(self, authorization: bytes | None) -> Principal:
        """The principal for an `Authorization` header value (raw bytes), or `AuthError`."""
        if not self.active:
            return IMPLICIT
        token = _bearer(authorization)
        digest = hashlib.sha256(token.encode()).hexdigest()
        principal = self._static.get(digest)
        if principal is not None:
            return principal
        cached = self._cache.get(digest)
        if cached is not None:
            if cached.until > time.monotonic():
                return cached.principal
            del self._cache[digest]
        if self.jwt is not None and token.count(".") == 2:
            try:
                owner = await self.jwt.owner(token)
            except TokenRejected as exc:
                raise AuthError(f"Invalid bearer token: {exc}.") from None
            jwt_config = self.jwt.config
            return Principal(owner, quota_key=f"jwt:{owner}", requests_per_minute=jwt_config.requests_per_minute,
                             tokens_per_minute=jwt_config.tokens_per_minute)
        if self.keys is not None:
            revocations = self._revocations
            match = await self.keys.find(digest)
            if match is not None:
                principal = Principal(match.owner, key_id=match.id, quota_key=match.id,
                                      requests_per_minute=match.requests_per_minute,
                                      tokens_per_minute=match.tokens_per_minute)
                if self.cache_seconds > 0 and revocations == self._revocations:
                    self._cache[digest] = _Cached(principal, time.monotonic() + self.cache_seconds)
                    if len(self._cache) > 10_000:
                        self._cache.pop(next(iter(self._cache)))
                return principal
        raise AuthError(f"Incorrect API key provided: {mask(token)}.")

    # -- the admin API -----------------------------------------------------------------------------------
    def _store(self) -> ApiKeyStore:
        if self.keys is None:
            raise APIError("API keys cannot be managed without a database.")
        return self.keys

    def admit(self, principal: Principal) -> None:
        """Quotas: take one request from the principal's buckets, or raise RateLimited (429)."""
        if principal.limited and principal.quota_key is not None:
            self.quotas.admit(principal.quota_key, principal.requests_per_minute, principal.tokens_per_minute)

    def charge(self, principal: Principal, usage: dict | None) -> None:
        """Quotas: a finished response's tokens count against the principal's TPM."""
        if principal.tokens_per_minute is not None and principal.quota_key is not None and usage:
            total = usage.get("total_tokens")
            if isinstance(total, int):
                self.quotas.charge(principal.quota_key, principal.tokens_per_minute, total)

    async def create_key(self, owner: str, name: str | None, *, requests_per_minute: int | None = None,
                         tokens_per_minute: int | None = None) -> dict[str, object]:
        """A new key for `owner`; the returned object holds the key itself (shown this once only)."""
        key = generate_key()
        created = await self._store().create(key_id=new_id("api_key"), owner=owner, name=name,
                                             key_hash=hash_key(key), prefix=display_prefix(key),
                                             requests_per_minute=requests_per_minute,
                                             tokens_per_minute=tokens_per_minute)
        log.info("api key %s created for owner %r", created["id"], owner)
        return {**created, "value": key}

    async def revoke_key(self, key_id: str) -> dict[str, object]:
        self._revocations += 1
        if not await self._store().revoke(key_id):
            raise NotFound(f"API key with id '{key_id[:64]}' not found.", param="key_id")
        # forget it here at once: the next request with it goes to the database and finds it revoked
        for digest in [d for d, c in self._cache.items() if c.principal.key_id == key_id]:
            self._cache.pop(digest, None)
        log.info("api key %s revoked", key_id)
        return {"id": key_id, "object": "api_key.deleted", "deleted": True}


def _bearer(authorization: bytes | None) -> str:
    if not authorization:
        raise AuthError(MISSING)
    try:
        value = authorization.decode("latin-1").strip()
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise AuthError(MISSING) from None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(MISSING)
    return token
