"""What authentication costs per request, and whether another owner's id can be told from an unknown id.

    PYTHONPATH=src .venv/bin/python bench/auth_overhead.py [--n 20000] [--probes 2000]

1. `Authenticator.authenticate` alone (the per-request work of the middleware): a static key (sha256 +
   dict lookup), a database key served from the in-process cache, a database key looked up in SQLite
   (`key_cache_seconds: 0`), a JWT (RS256, key from the JWKS cache), and auth off.
2. The whole request through a real server (uvicorn in a thread, httpx keep-alive client in this process):
   GET /v1/models with auth off vs a static key, medians of `--n / 10` requests each, interleaved.
3. Probing: with bob's key, GET /v1/responses/{id} for alice's id vs an unknown id of the same shape,
   interleaved `--probes` times each; medians, p10/p90 and the difference of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from respond.api.auth import AuthMiddleware  # noqa: E402
from respond.auth import Authenticator  # noqa: E402
from respond.config import AuthConfig, JWTConfig, ProviderConfig  # noqa: E402
from respond.storage.api_keys_repo import ApiKeyStore  # noqa: E402
from respond.storage.engine import Database  # noqa: E402
from respond.storage.responses_repo import ResponseStore  # noqa: E402
from tests.support.server import make_config, start_server  # noqa: E402

ALICE, BOB = "sk-alice-0123456789abcdef0123456789ab", "sk-bob-0123456789abcdef0123456789abcd"


async def per_call(auth: Authenticator, header: bytes, n: int) -> float:
    for _ in range(100):
        await auth.authenticate(header)
    start = time.perf_counter()
    for _ in range(n):
        await auth.authenticate(header)
    return (time.perf_counter() - start) / n * 1e6


async def authenticate_costs(n: int, tmp: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp / 'keys.db'}")
    await db.upgrade()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    cached = Authenticator(AuthConfig(api_keys=[{"key": ALICE, "owner": "alice"}], key_cache_seconds=60),
                           ApiKeyStore(db))
    created = await cached.create_key("carol", None)
    uncached = Authenticator(AuthConfig(enabled=True, key_cache_seconds=0), ApiKeyStore(db))
    with_jwt = Authenticator(AuthConfig(jwt=JWTConfig(public_key=pem, algorithms=["RS256"])))
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 3600}, key, algorithm="RS256")
    rows = [
        ("auth off", Authenticator(AuthConfig()), b"", n),
        ("static key (sha256 + dict)", cached, f"Bearer {ALICE}".encode(), n),
        ("database key, cached", cached, f"Bearer {created['value']}".encode(), n),
        ("database key, SQLite lookup", uncached, f"Bearer {created['value']}".encode(), max(n // 20, 200)),
        ("JWT RS256 (static key)", with_jwt, f"Bearer {token}".encode(), max(n // 10, 200)),
    ]
    print("1. Authenticator.authenticate, µs per call")
    for name, auth, header, count in rows:
        print(f"   {name:32s} {await per_call(auth, header, count):8.1f}")
    print("   the whole AuthMiddleware around a no-op ASGI app, µs per request:")
    for name, auth, header in (("auth off", rows[0][1], None), ("static key", cached, f"Bearer {ALICE}".encode())):
        print(f"   {name:32s} {await middleware_cost(auth, header, n):8.1f}")
    await db.close()


async def middleware_cost(auth: Authenticator, header: bytes | None, n: int) -> float:
    async def noop(scope: dict, receive: object, send: object) -> None:
        pass

    app = SimpleNamespace(state=SimpleNamespace(services=SimpleNamespace(auth=auth)))
    middleware = AuthMiddleware(noop, public_paths=["/health"])
    headers = [(b"host", b"x"), (b"user-agent", b"OpenAI/Python"), (b"content-type", b"application/json")]
    if header is not None:
        headers.append((b"authorization", header))
    start = time.perf_counter()
    for _ in range(n):
        scope = {"type": "http", "path": "/v1/responses", "method": "POST", "headers": headers, "app": app,
                 "state": {}}
        await middleware(scope, None, None)
    return (time.perf_counter() - start) / n * 1e6


def pct(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))]


def http_costs(n: int, probes: int, tmp: Path) -> None:
    provider = ProviderConfig(id="bench", type="openai", base_url="http://127.0.0.1:9/v1", api_key="x",
                              models=["fake"])
    off = start_server(make_config(tmp / "off", [provider], test_id_header=False, log_level="warning"))
    on = start_server(make_config(tmp / "on", [provider], test_id_header=False, log_level="warning",
                                  auth=AuthConfig(api_keys=[{"key": ALICE, "owner": "alice"},
                                                            {"key": BOB, "owner": "bob"}])))
    try:
        alice_id = "resp_" + "a1" * 24
        response = {"id": alice_id, "object": "response", "created_at": time.time(), "model": "bench/fake",
                    "status": "completed", "output": []}
        asyncio.run(save_directly(on.config.resolved_database_url(), response, "alice"))
        c_off = httpx.Client(base_url=off.base_url)
        c_on = httpx.Client(base_url=on.base_url, headers={"Authorization": f"Bearer {ALICE}"})
        c_bob = httpx.Client(base_url=on.base_url, headers={"Authorization": f"Bearer {BOB}"})
        assert c_on.get(f"/responses/{alice_id}").status_code == 200
        t_off, t_on = [], []
        for _ in range(max(n // 10, 200)):
            for client, sink in ((c_on, t_on), (c_off, t_off)):
                start = time.perf_counter()
                assert client.get("/models").status_code == 200
                sink.append((time.perf_counter() - start) * 1e3)
        print("2. GET /v1/models through the server, ms (median / p90); wall time, noisy on a loaded machine")
        print(f"   auth off    {statistics.median(t_off):.3f} / {pct(t_off, .9):.3f}")
        print(f"   static key  {statistics.median(t_on):.3f} / {pct(t_on, .9):.3f}")
        print(f"   added (median) {statistics.median(t_on) - statistics.median(t_off):+.3f} ms")
        other, unknown = [], []
        unknown_id = "resp_" + "b2" * 24
        for _ in range(probes):
            for rid, sink in ((alice_id, other), (unknown_id, unknown)):
                start = time.perf_counter()
                answer = c_bob.get(f"/responses/{rid}")
                sink.append((time.perf_counter() - start) * 1e3)
                assert answer.status_code == 404
        print(f"3. bob probing: GET /v1/responses/<id> x{probes}, ms (p10 / median / p90)")
        print(f"   alice's id   {pct(other, .1):.3f} / {statistics.median(other):.3f} / {pct(other, .9):.3f}")
        print(f"   unknown id   {pct(unknown, .1):.3f} / {statistics.median(unknown):.3f} / {pct(unknown, .9):.3f}")
        print(f"   difference of medians {statistics.median(other) - statistics.median(unknown):+.4f} ms")
    finally:
        off.stop()
        on.stop()


async def save_directly(url: str, response: dict, owner: str) -> None:
    """Store a response in the server's SQLite file through a second connection (no model needed)."""
    db = Database(url)
    try:
        await ResponseStore(db).save(response, [], owner=owner)
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--probes", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="respond-bench-auth-") as tmp:
        asyncio.run(authenticate_costs(args.n, Path(tmp)))
        http_costs(args.n, args.probes, Path(tmp))


if __name__ == "__main__":
    main()
