"""Per-key quotas (issue 12): requests per minute and tokens per minute -> 429 `rate_limit_exceeded` with
`Retry-After`, for static keys, keys made through the admin API, and WebSocket `response.create` frames."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
import websockets.sync.client

from respond.config import AuthConfig
from tests.api.wire import create
from tests.support.conformance import validate_error_envelope
from tests.support.server import scripted_provider
from tests.support.upstream import reply

SLOW = "sk-slow-0123456789abcdef0123456789abcd"  # 2 requests per minute
THRIFTY = "sk-thrifty-0123456789abcdef0123456789"  # 50 tokens per minute
FREE = "sk-free-0123456789abcdef0123456789abcd"
ADMIN = "sk-admin-0123456789abcdef0123456789ab"
USAGE = {"prompt_tokens": 40, "completion_tokens": 40, "total_tokens": 80}


@pytest.fixture
def limited(make_server: Any, upstream: Any) -> Any:
    return make_server([scripted_provider(upstream)], auth=AuthConfig(api_keys=[
        {"key": SLOW, "owner": "slow", "requests_per_minute": 2},
        {"key": THRIFTY, "owner": "thrifty", "tokens_per_minute": 50},
        {"key": FREE, "owner": "slow"}], admin_keys=[ADMIN]))


def sdk(server: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def too_many(call: Any, kind: str) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as err:
        call()
    error = validate_error_envelope(err.value.response.json(), 429, code="rate_limit_exceeded", error_type=kind)
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert "Rate limit reached for" in error["message"]
    return err.value


def test_requests_per_minute(limited: Any) -> None:
    slow = sdk(limited, SLOW)
    slow.files.list()
    slow.models.list()
    error = too_many(slow.files.list, "requests")
    assert error.response.headers["x-ratelimit-limit-requests"] == "2"
    assert 25 <= int(error.response.headers["retry-after"]) <= 30  # one request comes back every 30 s
    sdk(limited, FREE).files.list()  # the same owner with another key is not limited


def test_tokens_per_minute(limited: Any, upstream: Any) -> None:
    thrifty = sdk(limited, THRIFTY)
    upstream.script(reply("a long answer", usage=USAGE))
    first = create(thrifty, model="up/scripted", input="hi")
    assert first.usage.total_tokens == 80
    too_many(lambda: thrifty.responses.create(model="up/scripted", input="again"), "tokens")


def test_streamed_usage_counts_too(limited: Any, upstream: Any) -> None:
    thrifty = sdk(limited, THRIFTY)
    upstream.script(reply("streamed", usage=USAGE))
    with thrifty.responses.create(model="up/scripted", input="hi", stream=True) as stream:
        assert any(event.type == "response.completed" for event in stream)
    too_many(thrifty.files.list, "tokens")


def test_admin_keys_with_quotas(limited: Any) -> None:
    admin = httpx.Client(base_url=limited.base_url, headers={"Authorization": f"Bearer {ADMIN}"})
    key = admin.post("/admin/api_keys", json={"owner": "erin", "requests_per_minute": 1}).json()
    assert key["requests_per_minute"] == 1 and key["tokens_per_minute"] is None
    erin = sdk(limited, key["value"])
    erin.files.list()
    too_many(erin.files.list, "requests")
    bad = admin.post("/admin/api_keys", json={"owner": "x", "requests_per_minute": 0})
    validate_error_envelope(bad.json(), 400, param="requests_per_minute")


def test_websocket_frames_count_as_requests(limited: Any, upstream: Any) -> None:
    url = f"ws://127.0.0.1:{limited.config.port}/v1/responses"
    with websockets.sync.client.connect(url, additional_headers={"Authorization": f"Bearer {SLOW}"}) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "up/scripted", "input": "one"}))
        while json.loads(ws.recv())["type"] != "response.completed":
            pass
        ws.send(json.dumps({"type": "response.create", "model": "up/scripted", "input": "two"}))
        event = json.loads(ws.recv())
        assert event["type"] == "error" and event["status"] == 429
        assert event["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(websockets.exceptions.InvalidStatus) as err:  # the bucket is empty: handshake refused
        with websockets.sync.client.connect(url, additional_headers={"Authorization": f"Bearer {SLOW}"}):
            pass
    assert err.value.response.status_code == 429 and int(err.value.response.headers["retry-after"]) >= 1
