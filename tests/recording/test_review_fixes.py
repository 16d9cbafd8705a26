"""Recording edge cases: what must not be scrubbed, echoed keys, churn, early stops, tool invocations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from respond.errors import UpstreamError
from respond.recording import OutboundRequest, Recorder
from respond.recording.context import use_test_id
from respond.recording.hashing import request_hash
from tests.recording.conftest import SEEDS
from tests.recording.helpers import CountingCall, CountingStream, chat_request, chunks


def _tool_schema(password_type: str) -> dict:
    return {"type": "function", "function": {"name": "login", "parameters": {
        "type": "object", "properties": {"user": {"type": "string"}, "password": {"type": password_type}},
        "required": ["user", "password"]}}}


async def test_schema_properties_and_prompt_cache_key_are_not_taken_for_secrets(rec_dir: Path) -> None:
    recorder = Recorder("record", rec_dir)
    await recorder.call(chat_request("log in", tools=[_tool_schema("string")], prompt_cache_key="pk-1"),
                        CountingCall({"ok": 1}))
    stored = json.loads(next(rec_dir.glob("*.json")).read_text())["request"]["body"]
    assert stored["tools"][0]["function"]["parameters"]["properties"]["password"] == {"type": "string"}
    assert stored["prompt_cache_key"] == "pk-1"
    # a request that differs only there is another request: replay must miss, not serve the first answer
    replay = Recorder("replay", rec_dir)
    with pytest.raises(Exception, match="No recording"):
        await replay.call(chat_request("log in", tools=[_tool_schema("integer")], prompt_cache_key="pk-1"),
                          CountingCall({"ok": 2}))


async def test_an_api_key_echoed_by_the_upstream_is_redacted(rec_dir: Path) -> None:
    recorder = Recorder("record", rec_dir)
    recorder.add_secret("sk-live-1234567890")
    echo = UpstreamError("Incorrect API key provided: sk-live-1234567890", upstream_status=401,
                         body={"error": {"message": "Incorrect API key provided: sk-live-1234567890"}})
    with pytest.raises(UpstreamError):
        await recorder.call(chat_request(), CountingCall(error=echo))
    text = next(rec_dir.glob("*.json")).read_text()
    assert "sk-live-1234567890" not in text and "<redacted>" in text


async def test_obfuscation_padding_is_not_recorded(rec_dir: Path) -> None:
    padded = [{**c, "obfuscation": "Xy12"} for c in chunks()]
    recorder = Recorder("record", rec_dir)
    got = [c async for c in recorder.stream(chat_request(stream=True), CountingStream(padded))]
    assert all("obfuscation" not in c for c in got)
    assert "obfuscation" not in next(rec_dir.glob("*.json")).read_text()


async def test_an_early_stop_does_not_overwrite_a_complete_recording(rec_dir: Path) -> None:
    recorder = Recorder("record", rec_dir)
    full = [c async for c in recorder.stream(chat_request(stream=True), CountingStream(chunks("a b c d")))]
    stream = recorder.stream(chat_request(stream=True), CountingStream(chunks("a b c d")))
    await anext(stream)
    await stream.aclose()  # the consumer went away after one chunk
    replayed = [c async for c in Recorder("replay", rec_dir).stream(chat_request(stream=True),
                                                                   CountingStream([]))]
    assert replayed == full


async def test_tool_invocations_record_and_replay(rec_dir: Path) -> None:
    """The seam is generic: an MCP tools/call (or any HTTP fetch a tool makes) records like inference."""
    call = OutboundRequest(method="POST", url="http://mcp.test/mcp", endpoint="mcp://experiments/tools/call",
                           body={"name": "get_experiment_id", "arguments": {"experiment_name": "boiling_point"}},
                           headers={"Authorization": "Bearer mcp-token"})
    result = {"content": [{"type": "text", "text": "exp_004"}], "isError": False}
    live = CountingCall(result)
    with use_test_id("tests/tools::test_mcp"):
        recorded = await Recorder("record", rec_dir).call(call, live, response_type="mcp.types.CallToolResult")
        replayed = await Recorder("replay", rec_dir).call(call, CountingCall({"never": "called"}))
    assert recorded == replayed == result and live.calls == 1
    stored = json.loads(next(rec_dir.glob("*.json")).read_text())
    assert stored["response"]["body"]["__type__"] == "mcp.types.CallToolResult"
    assert "mcp-token" not in json.dumps(stored)
    # a failing tool call is recorded and fails the same way on replay
    failing = OutboundRequest(method="POST", url="http://mcp.test/mcp", endpoint="mcp://experiments/tools/call",
                              body={"name": "get_user_id", "arguments": {"username": "nobody"}})
    with use_test_id("tests/tools::test_mcp"), pytest.raises(UpstreamError, match="unknown user"):
        await Recorder("record", rec_dir).call(failing, CountingCall(
            error=UpstreamError("unknown user", upstream_status=404)))
    with use_test_id("tests/tools::test_mcp"), pytest.raises(UpstreamError, match="unknown user"):
        await Recorder("replay", rec_dir).call(failing, CountingCall({}))


def test_the_request_hash_is_pinned() -> None:
    """Changing how requests hash would orphan every committed recording: this digest must not move."""
    seed = json.loads(next(SEEDS.glob("004_*.json")).read_text())
    digest = request_hash("POST", seed["request"]["endpoint"], seed["request"]["body"], seed["test_id"])
    assert digest == "18e8513b2b22879510c6547aa3fb6fc8a2ef84e293887bd482ee6e28915f7f86"
