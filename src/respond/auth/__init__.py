"""Authentication: who a request acts for (its owner), from an API key or an OAuth2/OIDC bearer token.

- `keys.py`: key hashing, generation and masking (keys are only ever kept as sha256 digests).
- `jwt.py`: JWT verification against a JWKS URL (fetched and cached) or a static public key.
- `service.py`: `Authenticator`: the Authorization header -> a `Principal` (owner, admin?) or a 401.
The ASGI middleware that runs it once per request is `respond.api.auth`.
"""

from respond.auth.service import Authenticator, AuthError, Principal

__all__ = ["AuthError", "Authenticator", "Principal"]
