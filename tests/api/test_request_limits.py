"""Bad input at the edge: bodies nested too deeply (400), bodies too large (413, never buffered whole), on
every JSON-reading endpoint and on WebSocket frames; a stored document that cannot be written back does not
break the list pages that contain it; a huge token count does not stall the server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from respond.config import DEFAULT_MAX_REQUEST_BYTES, Config
from respond.storage.engine import Database
from respond.storage.responses_repo import ResponseStore
from respond.storage.tables import DEFAULT_OWNER
from tests.support.conformance import validate_error_envelope
from tests.support.server import local_provider, scripted_provider

MODEL = "up/scripted"
POSTS = ["/responses", "/responses/compact", "/responses/input_tokens", "/chat/completions", "/embeddings"]


def nested(depth: int) -> Any:
    """A JSON schema-ish value with `depth` levels of objects (the value itself is level 1)."""
    value: Any = {"type": "string"}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def body_for(path: str, deep: Any) -> dict[str, Any]:
    """A body for `path` with `deep` where a client would put a large nested document."""
    if path.startswith("/responses"):
        return {"model": MODEL, "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": deep}]}
    if path == "/chat/completions":
        return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": deep}}]}
    return {"model": "up/scripted-embed", "input": "hi", "extra": deep}


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@pytest.mark.parametrize("path", POSTS)
def test_a_body_nested_too_deeply_is_a_400(server, path: str) -> None:
    deep = nested(255)  # parses (orjson reads 1024 levels), cannot be written back (orjson writes 254)
    response = httpx.post(f"{server.base_url}{path}", content=json.dumps(body_for(path, deep)),
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    error = validate_error_envelope(response.json(), 400, code="json_too_deep")
    assert "nested too deeply" in error["message"] and "128" in error["message"]


def test_the_depth_limit_is_128_levels(server) -> None:
    ok = body_for("/responses", nested(128 - 3))  # the body itself, tools, tools[0]: 3 levels
    assert depth_of(ok) == 128
    assert httpx.post(f"{server.base_url}/responses", json=ok, timeout=30).status_code == 200
    too_deep = body_for("/responses", nested(126))
    assert depth_of(too_deep) == 129
    response = httpx.post(f"{server.base_url}/responses", json=too_deep, timeout=30)
    assert response.status_code == 400
    # beyond what orjson even parses: the same clear message, not "invalid JSON"
    beyond = b"[" * 2000 + b"]" * 2000
    response = httpx.post(f"{server.base_url}/responses", content=beyond, timeout=30)
    validate_error_envelope(response.json(), 400, code="json_too_deep")


def test_a_websocket_frame_nested_too_deeply_is_an_error_event(server) -> None:
    frame = {"type": "response.create", **body_for("/responses", nested(255))}
    with connect(f"ws://{server.url.removeprefix('http://')}/v1/responses") as ws:
        ws.send(json.dumps(frame))  # orjson itself could not write it
        event = orjson.loads(ws.recv(timeout=30))
        assert event["type"] == "error" and event["error"]["code"] == "json_too_deep", event
        ws.send(orjson.dumps({"type": "response.create", "model": MODEL, "input": "still open"}).decode())
        types = []
        while not types or types[-1] not in ("response.completed", "response.failed", "error"):
            types.append(orjson.loads(ws.recv(timeout=30))["type"])
        assert types[-1] == "response.completed"


# -- stored documents that cannot be written back --------------------------------------------------------

def test_a_stored_response_that_cannot_be_serialized_does_not_break_the_list(make_server, upstream) -> None:
    """A row stored before the depth limit existed: its list page used to answer 500 until it was deleted."""
    running = make_server([scripted_provider(upstream)])
    ids = [httpx.post(f"{running.base_url}/responses", json={"model": MODEL, "input": f"n{i}"}).json()["id"]
           for i in range(2)]
    # the deepest document orjson still writes alone, but not inside a list page ({"data": [...]} adds 2)
    template = httpx.get(f"{running.base_url}/responses/{ids[0]}").json()

    def deep_response(levels: int) -> dict[str, Any]:
        return {**template, "id": "resp_too_deep", "created_at": template["created_at"] + 1,
                "tools": [{"type": "function", "name": "f", "parameters": nested(levels)}]}

    levels = 200
    while _writable(deep_response(levels + 1)):
        levels += 1
    response = deep_response(levels)
    assert not _writable({"object": "list", "data": [response]})

    async def save() -> None:
        db = Database(running.config.resolved_database_url())
        try:
            await ResponseStore(db).save(response, [], [], owner=DEFAULT_OWNER)
        finally:
            await db.close()

    asyncio.run(save())
    page = httpx.get(f"{running.base_url}/responses", params={"limit": 10})
    assert page.status_code == 200, page.text
    assert [r["id"] for r in page.json()["data"]] == ids[::-1]  # the bad row is skipped, the others listed
    assert httpx.get(f"{running.base_url}/responses/resp_too_deep").status_code == 200
    assert httpx.delete(f"{running.base_url}/responses/resp_too_deep").status_code == 200


def _writable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


# -- size ---------------------------------------------------------------------------------------------------

def test_the_default_limit() -> None:
    assert Config().max_request_bytes == DEFAULT_MAX_REQUEST_BYTES == 32 * 1024 * 1024


@pytest.fixture
def small_server(make_server, upstream):
    return make_server([scripted_provider(upstream), local_provider()], max_request_bytes=1_000_000)


@pytest.mark.parametrize("path", POSTS)
def test_a_body_over_the_limit_is_a_413(small_server, path: str) -> None:
    body = orjson.dumps({**body_for(path, {}), "input": "x" * 1_000_100})
    response = httpx.post(f"{small_server.base_url}{path}", content=body,
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 413, response.text
    error = validate_error_envelope(response.json(), 413, code="request_too_large")
    assert "1000000 bytes" in error["message"]
    # just under the limit: accepted
    fits = orjson.dumps({**body_for("/responses", {}), "input": "x" * 990_000})
    assert httpx.post(f"{small_server.base_url}/responses", content=fits, timeout=30).status_code == 200


def test_a_chunked_body_over_the_limit_is_refused_while_it_arrives(small_server) -> None:
    """No Content-Length: the server counts the chunks and answers 413 long before the body ends."""
    host, port = small_server.url.removeprefix("http://").split(":")
    total = 200 * 1024 * 1024
    piece = b"x" * 65536
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + 60
        while sent < total and time.monotonic() < deadline:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if b"\r\n\r\n" in answer:
                break
            try:
                sock.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                sent += len(piece)
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 20 * 1024 * 1024  # refused after about the limit, not after the whole 200 MB


def test_a_websocket_message_over_the_limit_is_refused(small_server) -> None:
    with connect(f"ws://{small_server.url.removeprefix('http://')}/v1/responses", max_size=None) as ws:
        ws.send(orjson.dumps({"type": "response.create", "model": MODEL, "input": "x" * 1_000_100}).decode())
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big


def test_an_oversized_frame_that_reaches_the_app_is_an_error_event(make_server, upstream) -> None:
    """Behind an ASGI server that does not enforce the limit itself, the app still refuses the frame."""
    running = make_server([scripted_provider(upstream)], max_request_bytes=1_000_000)
    running.server.config.ws_max_size = 16 * 1024 * 1024  # as if the server ignored the configured limit
    with connect(f"ws://{running.url.removeprefix('http://')}/v1/responses", max_size=None) as ws:
        ws.send(orjson.dumps({"type": "response.create", "model": MODEL, "input": "x" * 1_000_100}).decode())
        event = orjson.loads(ws.recv(timeout=30))
        assert event["type"] == "error" and event["status"] == 413 and event["error"]["code"] == "request_too_large"


def test_counting_a_20_mb_input_does_not_stall_the_server(make_server, upstream) -> None:
    running = make_server([scripted_provider(upstream)])
    body = orjson.dumps({"model": MODEL, "input": [
        {"role": "user", "content": "word " * 2000} for _ in range(2000)]})  # 20 MB in 2000 messages
    assert len(body) > 20_000_000
    result: dict[str, Any] = {}

    def count() -> None:
        result["response"] = httpx.post(f"{running.base_url}/responses/input_tokens", content=body,
                                        headers={"content-type": "application/json"}, timeout=300)

    worker = threading.Thread(target=count)
    worker.start()
    latencies = []
    while worker.is_alive():
        started = time.monotonic()
        httpx.get(f"{running.url}/health", timeout=60)
        latencies.append(time.monotonic() - started)
    worker.join()
    assert result["response"].status_code == 200, result["response"].text
    assert result["response"].json()["input_tokens"] > 2000 * 2000
    assert latencies  # the server answered health checks while it counted (latencies: reported, not asserted)
    print(f"health latency while counting: max {max(latencies) * 1000:.0f} ms over {len(latencies)} checks")

