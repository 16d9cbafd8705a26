"""An upstream that echoes the API key it was sent ("Incorrect API key provided: Bearer sk-...") must not get
the key to the client (JSON body, SSE events), the stored response or the logs: on /v1/responses,
/v1/chat/completions and /v1/embeddings, streamed and not."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from respond.config import ProviderConfig
from tests.support.upstream import error, midstream_error, reply

KEY = "sk-proj-Echoed0Key1234567890abcdefXYZ"
MODEL = "up/scripted"


def echo_401() -> object:
    return error(401, f"Incorrect API key provided: Bearer {KEY}. You can find your API key at "
                      "https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def echo_text_500() -> object:
    return error(500, body=f"proxy error: upstream rejected Authorization: Bearer {KEY}")


def echo_midstream() -> object:
    return midstream_error(reply("Hel", "lo", "there"), after=2, message=f"key {KEY} was revoked mid-way")


@pytest.fixture
def keyed(make_server, upstream):
    provider = ProviderConfig(id="up", type="openai", base_url=upstream.base_url, api_key=KEY,
                              models=["scripted"], embedding_models=["scripted-embed"], timeout=10)
    return make_server([provider])


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _stored(server, text: str) -> list[str]:
    """The stored responses whose ids appear in `text`, as JSON text."""
    ids = set(re.findall(r"resp_[A-Za-z0-9]+", text))
    assert ids, text
    return [httpx.get(f"{server.base_url}/responses/{i}", timeout=10).text for i in ids]


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert KEY not in text, text[:2000]
        assert KEY[8:24] not in text, text[:2000]  # not even a piece of it


@pytest.mark.parametrize("turn", [echo_401, echo_text_500, echo_midstream])
@pytest.mark.parametrize("stream", [False, True])
def test_responses(keyed, upstream, logs, turn, stream: bool) -> None:
    upstream.script(turn())
    response = httpx.post(f"{keyed.base_url}/responses", json={"model": MODEL, "input": "hi", "stream": stream},
                          timeout=30)
    assert "<redacted>" in response.text, response.text  # the upstream did echo it, and it was redacted
    stored = _stored(keyed, response.text)
    assert all("<redacted>" in s and '"failed"' in s for s in stored)
    listed = httpx.get(f"{keyed.base_url}/responses", timeout=10).text
    _assert_clean(response.text, *stored, listed, logs.text)
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {KEY}"  # the key itself was sent


@pytest.mark.parametrize("turn", [echo_401, echo_text_500, echo_midstream])
@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions(keyed, upstream, logs, turn, stream: bool) -> None:
    upstream.script(turn())
    response = httpx.post(f"{keyed.base_url}/chat/completions", timeout=30, json={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    assert "<redacted>" in response.text, response.text
    _assert_clean(response.text, logs.text)


@pytest.mark.parametrize("turn", [echo_401, echo_text_500])
def test_embeddings(keyed, upstream, logs, turn) -> None:
    upstream.script_embeddings(turn())
    response = httpx.post(f"{keyed.base_url}/embeddings", json={"model": "up/scripted-embed", "input": "hi"},
                          timeout=30)
    assert response.status_code >= 400 and "<redacted>" in response.text, response.text
    _assert_clean(response.text, logs.text)
