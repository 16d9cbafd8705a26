"""OAuth2 / OIDC bearer tokens (issue 12): JWTs signed with keys generated here, verified by the real server
against a JWKS served by a loopback HTTP server started by the test (or a static PEM public key)."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from respond.config import AuthConfig, JWTConfig
from tests.api.wire import create
from tests.support.conformance import validate_error_envelope
from tests.support.server import RunningServer, make_config, scripted_provider, start_server

ISSUER = "https://idp.example.test/"
AUDIENCE = "respond-api"
ALICE_KEY = "sk-alice-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"


class JWKSServer:
    """Serves `keys` as a JWKS at /jwks.json on a loopback port and counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict] = []
        self.fetches = 0
        self.fail = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.fetches += 1
                if outer.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, private_key: Any, kid: str) -> None:
        algorithm = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
        jwk = algorithm.to_jwk(private_key.public_key(), as_dict=True)
        self.keys.append({**jwk, "kid": kid, "use": "sig"})

    def close(self) -> None:
        self.httpd.shutdown()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: Any, kid: str | None = "k1", alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600} | claims
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


@pytest.fixture(scope="module")
def jwks() -> Any:
    server = JWKSServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def signing_key(jwks: JWKSServer) -> rsa.RSAPrivateKey:
    key = rsa_key()
    jwks.publish(key, "k1")
    return key


@pytest.fixture(scope="module")
def jwt_server(jwks: JWKSServer, signing_key: Any, upstream_server: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="respond-jwt-") as tmp:
        auth = AuthConfig(api_keys=[{"key": ALICE_KEY, "owner": "alice"}],
                          jwt=JWTConfig(jwks_url=jwks.url, issuer=ISSUER, audience=AUDIENCE,
                                        jwks_min_refresh_seconds=0, leeway=0))
        running = start_server(make_config(Path(tmp), [scripted_provider(upstream_server.upstream)], auth=auth))
        yield running
        running.stop()


def sdk(server: RunningServer, bearer: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=bearer, max_retries=0)


def rejected(server: RunningServer, bearer: str) -> str:
    with pytest.raises(openai.AuthenticationError) as err:
        sdk(server, bearer).files.list()
    error = validate_error_envelope(err.value.response.json(), 401, code="invalid_api_key")
    assert bearer not in error["message"]
    return error["message"]


def test_a_valid_token_acts_as_its_subject(jwt_server: RunningServer, signing_key: Any) -> None:
    alice = sdk(jwt_server, token(signing_key, sub="alice"))
    response = create(alice, model="up/scripted", input="hi from a token")
    assert alice.responses.retrieve(response.id).id == response.id
    # owners are names: the API key of owner "alice" is the same owner; another subject is not
    assert sdk(jwt_server, ALICE_KEY).responses.retrieve(response.id).id == response.id
    with pytest.raises(openai.NotFoundError):
        sdk(jwt_server, token(signing_key, sub="mallory")).responses.retrieve(response.id)


@pytest.mark.parametrize("claims,reason", [
    ({"exp": int(time.time()) - 60}, "the token has expired"),
    ({"aud": "someone-else"}, "the token's audience is not accepted"),
    ({"iss": "https://evil.example.test/"}, "the token's issuer is not accepted"),
    ({"exp": None}, "the token has no 'exp' claim"),
    ({"sub": None}, "the token has no 'sub' claim naming the owner"),
    ({"nbf": int(time.time()) + 600}, "the token is not valid yet"),
])
def test_bad_claims_are_401(jwt_server: RunningServer, signing_key: Any, claims: dict, reason: str,
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bad = token(signing_key, **claims)
    assert rejected(jwt_server, bad) == f"Invalid bearer token: {reason}."
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rejected: invalid_api_key" in logged  # the server's line was captured, and it holds no token
    assert bad not in logged and bad.split(".")[2] not in logged


def test_bad_signatures_and_algorithms_are_401(jwt_server: RunningServer, signing_key: Any) -> None:
    forged = token(rsa_key(), kid="k1")  # another key claiming to be k1
    assert rejected(jwt_server, forged) == "Invalid bearer token: the token's signature is invalid."
    good = token(signing_key)
    head, body, signature = good.split(".")
    tampered = jwt.utils.base64url_encode(json.dumps(
        {**json.loads(jwt.utils.base64url_decode(body)), "sub": "bob"}).encode()).decode()
    assert rejected(jwt_server, f"{head}.{tampered}.{signature}").endswith("signature is invalid.")
    # algorithm confusion: HMAC "signed" with the public key, and alg none
    unsigned = jwt.encode({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, None,
                          algorithm="none", headers={"kid": "k1"})
    assert rejected(jwt_server, unsigned) == "Invalid bearer token: the algorithm 'none' is not accepted."
    # (PyJWT refuses to HMAC-sign with a PEM public key: the HS256 header is built by hand)
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode()).decode()
    assert rejected(jwt_server, f"{header}.{body}.{signature}") == \
        "Invalid bearer token: the algorithm 'HS256' is not accepted."
    assert rejected(jwt_server, "not.a.jwt") == "Invalid bearer token: the token is malformed."
    assert rejected(jwt_server, token(signing_key, kid="nope")) == \
        "Invalid bearer token: the token's signing key is unknown."


def test_jwks_is_cached_and_refetched_for_a_new_key(jwt_server: RunningServer, jwks: JWKSServer,
                                                    signing_key: Any) -> None:
    client = sdk(jwt_server, token(signing_key))
    client.files.list()
    before = jwks.fetches
    for _ in range(5):
        sdk(jwt_server, token(signing_key, sub=f"user{_}")).files.list()
    assert jwks.fetches == before  # served from the cache
    rotated = rsa_key()
    jwks.publish(rotated, "k2")
    sdk(jwt_server, token(rotated, kid="k2")).files.list()  # unknown kid: one refetch finds it
    assert jwks.fetches == before + 1


def test_unreachable_jwks_is_503_not_a_pass(upstream_server: Any, tmp_path: Path) -> None:
    down = JWKSServer()
    down.fail = True
    key = rsa_key()
    auth = AuthConfig(jwt=JWTConfig(jwks_url=down.url, issuer=ISSUER, audience=AUDIENCE,
                                    jwks_min_refresh_seconds=0.5))
    running = start_server(make_config(tmp_path, [scripted_provider(upstream_server.upstream)], auth=auth))
    try:
        for _ in range(2):  # refetched or not (jwks_min_refresh_seconds), still a 503, never a 401
            answer = httpx.get(f"{running.base_url}/files", headers={"Authorization": f"Bearer {token(key)}"})
            assert answer.status_code == 503
            validate_error_envelope(answer.json(), 503, code="jwks_unavailable")
        down.fail = False
        down.publish(key, "k1")  # the issuer is back: a later request refetches and passes
        deadline = time.monotonic() + 20
        while (answer := httpx.get(f"{running.base_url}/files",
                                   headers={"Authorization": f"Bearer {token(key)}"})).status_code == 503:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert answer.status_code == 200, answer.text
    finally:
        running.stop()
        down.close()


def test_static_public_key_es256(upstream_server: Any, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    auth = AuthConfig(jwt=JWTConfig(public_key=pem, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"]))
    running = start_server(make_config(tmp_path, [scripted_provider(upstream_server.upstream)], auth=auth))
    try:
        client = sdk(running, token(key, kid=None, alg="ES256", sub="erin"))
        assert client.files.list().data == []
        other = ec.generate_private_key(ec.SECP256R1())
        assert rejected(running, token(other, kid=None, alg="ES256")).endswith("signature is invalid.")
        assert rejected(running, token(rsa_key(), kid=None)).endswith("the algorithm 'RS256' is not accepted.")
    finally:
        running.stop()
