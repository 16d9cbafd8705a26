"""OAuth2 / OIDC bearer tokens: a JWT is verified (signature, `exp`, `nbf`, `iss`, `aud`) with PyJWT against a
static public key or the issuer's JWKS, and the owner is read from a configured claim (default `sub`).

The JWKS is fetched over HTTP when first needed and used for `jwks_cache_seconds`; a token whose `kid` is
not in it triggers a refetch (key rotation) at most every `jwks_min_refresh_seconds`, so tokens with made-up
`kid`s cannot make the server hammer the issuer. A failed refetch keeps the keys it had. The fetch is not a
model or tool call and does not go through the Recorder (replays need no identity provider: tests serve
their own JWKS).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import jwt
from jwt import PyJWK, PyJWKSet

from respond.config import JWTConfig
from respond.errors import APIError

log = logging.getLogger("respond.auth")


class TokenRejected(Exception):
    """The token is not valid; the message says why (it never quotes the token)."""


class JWKSUnavailable(APIError):
    status_code = 503
    error_type = "server_error"


class JWTVerifier:
    def __init__(self, config: JWTConfig) -> None:
        self.config = config
        self.algorithms = list(config.algorithms)
        self._static: Any = None
        if config.public_key is not None:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._static = load_pem_public_key(config.public_key.encode())  # parsed once, not per token
        self._keys: dict[str | None, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def owner(self, token: str) -> str:
        """The owner the token names, or `TokenRejected`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("the token is malformed") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenRejected(f"the algorithm {alg!r} is not accepted" if isinstance(alg, str) and len(alg) < 16
                                else "the algorithm is not accepted")
        key = self._static if self._static is not None else await self._jwks_key(header.get("kid"))
        c = self.config
        required = ["exp"] + (["iss"] if c.issuer else []) + (["aud"] if c.audience else [])
        try:
            claims = jwt.decode(token, key, algorithms=self.algorithms, audience=c.audience, issuer=c.issuer,
                                leeway=c.leeway, options={"require": required, "verify_aud": c.audience is not None})
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("the token's audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token's issuer is not accepted") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token's signature is invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"the token has no '{exc.claim}' claim") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet") from None
        except jwt.PyJWTError:
            raise TokenRejected("the token is invalid") from None
        owner = claims.get(c.owner_claim)
        if not isinstance(owner, str) or not owner:
            raise TokenRejected(f"the token has no '{c.owner_claim}' claim naming the owner")
        return owner

    # -- JWKS ---------------------------------------------------------------------------------------------
    async def _jwks_key(self, kid: Any) -> Any:
        c = self.config
        now = time.monotonic()
        stale = now - self._fetched_at > c.jwks_cache_seconds
        if stale or (kid not in self._keys and now - self._fetched_at > c.jwks_min_refresh_seconds):
            async with self._lock:
                if time.monotonic() - self._fetched_at > min(c.jwks_min_refresh_seconds, c.jwks_cache_seconds):
                    await self._refresh()  # (not again if a request waiting on the lock just did)
        if not self._keys:  # nothing fetched yet (the last attempt failed): not the token's fault
            raise JWKSUnavailable("The token issuer's signing keys could not be fetched; try again later.",
                                  code="jwks_unavailable")
        key = self._keys.get(kid) if kid is not None else (next(iter(self._keys.values())) if len(self._keys) == 1
                                                            else None)
        if key is None:
            raise TokenRejected("the token's signing key is unknown")
        return key.key

    async def _refresh(self) -> None:
        url = self.config.jwks_url
        assert url is not None
        self._fetched_at = time.monotonic()  # also after a failure: retried after jwks_min_refresh_seconds
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            async with self._session.get(url) as answer:
                answer.raise_for_status()
                data = await answer.json(content_type=None)
            keys = PyJWKSet.from_dict(data).keys
        except Exception as exc:
            log.warning("could not fetch the JWKS from %s: %s", url, type(exc).__name__)
            return
        self._keys = {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}
