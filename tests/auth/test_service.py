"""The Authenticator and its configuration (issue 12): key sources, hashing, the database-key cache and
revocation, across two server instances sharing one database, `respond serve` with only $RESPOND_API_KEYS,
and library mode (which bypasses auth)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError

import respond
from respond.auth import Authenticator, AuthError
from respond.auth.keys import hash_key, mask
from respond.config import AuthConfig, JWTConfig, load_config
from respond.storage.api_keys_repo import ApiKeyStore
from respond.storage.engine import Database
from tests.support.server import free_port, make_config, scripted_provider, start_server, wait_until_serving
from tests.support.upstream import reply

KEY = "sk-test-5f4e3d2c1b0a99887766554433221100"


# -- configuration -----------------------------------------------------------------------------------------

def test_auth_is_off_by_default_and_env_keys_turn_it_on(tmp_path: Path) -> None:
    assert not load_config(env={}, data_dir=str(tmp_path)).auth.active
    config = load_config(env={"RESPOND_API_KEYS": f" {KEY}=alice , k2-0123456789abcdef=bob ",
                              "RESPOND_ADMIN_KEY": "adm-0123456789abcdef"}, data_dir=str(tmp_path))
    assert config.auth.active
    assert [(k.key, k.owner) for k in config.auth.api_keys] == [(KEY, "alice"), ("k2-0123456789abcdef", "bob")]
    assert config.auth.admin_keys == ["adm-0123456789abcdef"]
    with pytest.raises(ValueError) as err:
        load_config(env={"RESPOND_API_KEYS": f"{KEY}"}, data_dir=str(tmp_path))
    assert KEY not in str(err.value) and "entry 1" in str(err.value)


def test_auth_config_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "respond.yaml"
    path.write_text(f"""
auth:
  api_keys:
    - {{key: "${{ALICE_KEY}}", owner: alice}}
    - {{key_sha256: {hash_key("bob-secret-key-000")}, owner: bob}}
  admin_keys: ["sha256:{hash_key("admin-secret-key-0")}"]
  jwt: {{jwks_url: "https://idp.example/jwks.json", issuer: "https://idp.example/", audience: respond}}
""")
    config = load_config(path, env={"ALICE_KEY": KEY})
    assert config.auth.active and config.auth.api_keys[0].key == KEY and config.auth.jwt is not None
    off = AuthConfig(enabled=False, api_keys=[{"key": KEY, "owner": "a"}])
    assert not off.active
    for bad in ({"owner": "a"}, {"owner": "a", "key": KEY, "key_sha256": hash_key(KEY)},
                {"owner": "a", "key_sha256": "xyz"}, {"owner": "", "key": KEY}):
        with pytest.raises(ValidationError):
            AuthConfig(api_keys=[bad])
    with pytest.raises(ValidationError):
        JWTConfig(public_key="PEM", algorithms=["none"])
    with pytest.raises(ValidationError):
        JWTConfig(algorithms=["RS256"])  # neither a JWKS URL nor a key


def test_mask_never_shows_a_key() -> None:
    assert mask(KEY) == "sk-********1100" and KEY not in mask(KEY)
    assert mask("short") == "*****"
    assert mask("sk-respond-abcdefghijklmnopqrstuvwxyz0123456789") == "sk-respond-********6789"


# -- the authenticator ---------------------------------------------------------------------------------------

async def test_static_admin_and_database_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    await db.upgrade()
    try:
        auth = Authenticator(AuthConfig(api_keys=[{"key": KEY, "owner": "alice"}], admin_keys=[
            "sha256:" + hashlib.sha256(b"admin-key-0123456789").hexdigest()], key_cache_seconds=60), ApiKeyStore(db))
        assert (await auth.authenticate(b"Bearer " + KEY.encode())).owner == "alice"
        assert (await auth.authenticate(b"bearer   " + KEY.encode() + b"  ")).owner == "alice"
        admin = await auth.authenticate(b"Bearer admin-key-0123456789")
        assert admin.admin and admin.owner == "admin"
        for header in (None, b"", b"Bearer", b"Basic " + KEY.encode(), KEY.encode()):
            with pytest.raises(AuthError) as err:
                await auth.authenticate(header)
            assert err.value.status_code == 401 and "didn't provide an API key" in err.value.message

        created = await auth.create_key("carol", "ci")
        value = created["value"]
        row = await ApiKeyStore(db).get(created["id"])
        assert row is not None and "value" not in row and row["owner"] == "carol"
        principal = await auth.authenticate(f"Bearer {value}".encode())
        assert principal.owner == "carol" and principal.key_id == created["id"]
        # the digest, not the key, is what the database holds
        raw = await db.read(lambda conn: conn.exec_driver_sql("select key_hash, prefix from api_keys").all())
        assert raw == [(hash_key(value), value[:15] + "...")]
        await auth.revoke_key(created["id"])
        with pytest.raises(AuthError):
            await auth.authenticate(f"Bearer {value}".encode())
        await auth.close()
    finally:
        await db.close()


def test_auth_off_everyone_is_the_implicit_owner() -> None:
    import asyncio

    auth = Authenticator(AuthConfig())
    assert asyncio.run(auth.authenticate(None)).owner == "default"
    assert asyncio.run(auth.authenticate(b"Bearer anything")).owner == "default"


# -- several processes -------------------------------------------------------------------------------------------

def test_revocation_reaches_another_server_within_the_cache_time(tmp_path: Path, upstream: Any) -> None:
    admin_key = "sk-admin-aaaabbbbccccddddeeeeffff0000"
    auth = AuthConfig(admin_keys=[admin_key], key_cache_seconds=0.5)
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = start_server(make_config(tmp_path / "a", [scripted_provider(upstream)], auth=auth, database_url=db_url))
    b = start_server(make_config(tmp_path / "b", [scripted_provider(upstream)], auth=auth, database_url=db_url))
    try:
        created = httpx.post(f"{a.base_url}/admin/api_keys", json={"owner": "dave"},
                             headers={"Authorization": f"Bearer {admin_key}"}).json()
        on_b = openai.OpenAI(base_url=b.base_url, api_key=created["value"], max_retries=0)
        assert on_b.files.list().data == []  # a key created elsewhere works at once (misses are not cached)
        httpx.delete(f"{a.base_url}/admin/api_keys/{created['id']}", headers={"Authorization": f"Bearer {admin_key}"})
        with pytest.raises(openai.AuthenticationError):  # at once on the server that revoked it
            openai.OpenAI(base_url=a.base_url, api_key=created["value"], max_retries=0).files.list()
        deadline = time.monotonic() + 20
        while True:  # b trusted the key for at most key_cache_seconds
            try:
                on_b.files.list()
            except openai.AuthenticationError:
                break
            assert time.monotonic() < deadline, "the revoked key kept working on the other server"
            time.sleep(0.1)
    finally:
        a.stop()
        b.stop()


def test_serve_with_only_env_keys(tmp_path: Path, upstream: Any) -> None:
    port = free_port()
    env = {**os.environ, "RESPOND_API_KEYS": f"{KEY}=alice", "RESPOND_DATA_DIR": str(tmp_path / "data"),
           "OPENAI_API_KEY": "upstream-secret-key", "OPENAI_BASE_URL": upstream.base_url}
    env.pop("RESPOND_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", proc, timeout=90, log=proc.stdout.read)
        base = f"http://127.0.0.1:{port}/v1"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base, api_key="sk-wrong-key-0000000000000000", max_retries=0).models.list()
        upstream.script(reply("hello alice"))
        answer = openai.OpenAI(base_url=base, api_key=KEY, max_retries=0).responses.create(
            model="openai/gpt-4o", input="hi")
        assert answer.output_text == "hello alice"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "auth on" in out
    for secret in (KEY, hash_key(KEY), "sk-wrong-key-0000000000000000", "upstream-secret-key"):
        assert secret not in out


def test_library_mode_runs_as_the_implicit_owner(tmp_path: Path, upstream: Any) -> None:
    config = make_config(tmp_path, [scripted_provider(upstream)], auth=AuthConfig(api_keys=[
        {"key": KEY, "owner": "alice"}]))
    with respond.client(config) as client:
        upstream.script(reply("in process"))
        response = client.responses.create(model="up/scripted", input="hi")
        assert response.output_text == "in process"
        assert client.responses.retrieve(response.id).id == response.id
    # the same data over HTTP with auth on: the implicit owner's objects are not alice's
    running = start_server(config)
    try:
        with pytest.raises(openai.NotFoundError):
            openai.OpenAI(base_url=running.base_url, api_key=KEY, max_retries=0).responses.retrieve(response.id)
    finally:
        running.stop()
