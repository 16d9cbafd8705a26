"""Seed 003 end to end: an MCP turn with max_tool_calls=1, gpt-4o's real answer replayed from the seed.

The model asked for two MCP tools at once (get_experiment_id, get_user_id); with `max_tool_calls=1` the first
ran and the second was answered `Tool call skipped: maximum tool calls limit (1) reached.`, and gpt-4o's
second turn (the seed) saw exactly that. Here Respond runs that scenario against the seed's MCP server (the
`mcp` SDK's MCPServer with the same tools and descriptions, tests/support/mcp_server.py):

- the seed is the recording of the second model turn; the first turn was not kept, so it is rebuilt from the
  seed's own history (gpt-4o's two tool calls, with their real call ids) and says so;
- Respond's second request must equal the seed's body except one documented difference: the seed's
  assistant message carries `index` in each `tool_calls` entry (a streaming-chunk field its client copied
  into the request); Respond sends the request schema's fields only. The test first shows the unmodified seed
  missing with exactly that difference, then replays a copy without it;
- the MCP listing and call are recorded on the first run (record-if-missing) and the whole scenario then
  replays offline, with the MCP server stopped.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from respond.config import MCPConfig, RecordingConfig
from tests.api.wire import post_stream
from tests.scenarios.test_seed_scenarios import SEEDS, load_seed, openai_provider, respond_body
from tests.support.conformance import validate_stream
from tests.support.mcp_server import experiments_server, start_mcp

CHUNK = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"


def adapted_body(seed: dict[str, Any]) -> dict[str, Any]:
    body = respond_body(seed)
    for message in body["messages"]:
        for call in message.get("tool_calls") or []:
            call.pop("index", None)
    return body


def first_turn(seed: dict[str, Any]) -> dict[str, Any]:
    """Turn 1, rebuilt from the seed's history: the user's question -> gpt-4o's two parallel tool calls."""
    body = seed["request"]["body"]
    user, assistant = body["messages"][:2]
    base = {"id": "rec-turn1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-2024-08-06"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None},
                                    "finish_reason": None}]}]
    for call in assistant["tool_calls"]:
        chunks.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
            {"index": call["index"], "id": call["id"], "type": "function",
             "function": {"name": call["function"]["name"], "arguments": ""}}]}}]})
        chunks.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
            {"index": call["index"], "function": {"arguments": call["function"]["arguments"]}}]}}]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 310, "completion_tokens": 52,
                                                     "total_tokens": 362}})
    request = {"model": "gpt-4o", "messages": [user], "stream": True, "stream_options": {"include_usage": True},
               "tools": adapted_body(seed)["tools"]}
    return {"test_id": seed["test_id"], "note": "rebuilt from seed 003's history (gpt-4o's real tool calls)",
            "request": {**seed["request"], "body": request},
            "response": {"body": [{"__type__": CHUNK, "__data__": c} for c in chunks], "is_streaming": True}}


def run_scenario(server: Any, seed: dict[str, Any], url: str) -> dict[str, Any]:
    question = seed["request"]["body"]["messages"][0]["content"]
    events = post_stream(server.base_url, {
        "model": "openai/gpt-4o", "input": question, "max_tool_calls": 1,
        "tools": [{"type": "mcp", "server_label": "experiments", "server_url": url, "require_approval": "never"}]},
        test_id=seed["test_id"])
    return validate_stream(events) | {"_events": events}


def test_seed_003_max_tool_calls_with_mcp_tools(make_server, tmp_path: Path) -> None:
    seed = load_seed("003")
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "turn1.json").write_text(json.dumps(first_turn(seed), indent=2))
    adapted = copy.deepcopy(seed)
    adapted["request"]["body"] = adapted_body(seed)
    (recordings / "003_adapted.json").write_text(json.dumps(adapted, indent=2))
    mcp = start_mcp(experiments_server())
    mcp_config = MCPConfig(allowed_urls=["http://127.0.0.1:"])
    try:
        live = make_server([openai_provider("http://127.0.0.1:9/v1")], mcp=mcp_config,
                           recording=RecordingConfig(mode="record-if-missing", dir=str(recordings)))
        final = run_scenario(live, seed, mcp.url)
    finally:
        mcp.stop()
    assert final["status"] == "completed"
    out = final["output"]
    assert [(i["type"], i.get("name"), i.get("status")) for i in out] == [
        ("mcp_list_tools", None, None), ("mcp_call", "get_experiment_id", "completed"),
        ("mcp_call", "get_user_id", "incomplete"), ("message", None, "completed")]
    assert out[1]["output"] == "exp_004" and out[2]["output"] is None
    assert out[3]["content"][0]["text"].startswith("The experiment ID for 'boiling_point' is `exp_004`.")
    assert mcp.calls == [("get_experiment_id", {"experiment_name": "boiling_point"})]  # the second never ran
    assert final["usage"]["input_tokens"] == 310 + 474 and final["usage"]["output_tokens"] == 52 + 53
    kinds = [e["type"] for e in final["_events"]]
    assert kinds.count("response.mcp_call.completed") == 1 and "response.mcp_call.failed" not in kinds
    mcp_recordings = [json.loads(p.read_text()) for p in recordings.glob("*.json")
                      if json.loads(p.read_text())["request"]["endpoint"].startswith("mcp://")]
    assert sorted(r["request"]["endpoint"] for r in mcp_recordings) == ["mcp://experiments/tools/call",
                                                                        "mcp://experiments/tools/list"]

    # offline: the MCP server is gone, everything replays (the model's turns and the MCP calls)
    offline = make_server([openai_provider("http://127.0.0.1:9/v1")], mcp=mcp_config,
                          recording=RecordingConfig(mode="replay", dir=str(recordings)))
    again = run_scenario(offline, seed, mcp.url)
    assert [(i["type"], i.get("output"), i.get("status")) for i in again["output"]] == [
        (i["type"], i.get("output"), i.get("status")) for i in out]

    # the unmodified seed misses, and the miss names exactly the documented difference (`index`)
    (recordings / "003_adapted.json").unlink()
    shutil.copy(next(SEEDS.glob("003_*.json")), recordings)
    missed = run_scenario(offline, seed, mcp.url)
    assert missed["status"] == "failed"
    message = missed["error"]["message"]
    # the tool messages Respond built (the skip message included) match the seed's: only `index` differs
    assert "2 difference(s)" in message
    assert "messages[1].tool_calls[0].index: <absent> != 0" in message
    assert "messages[1].tool_calls[1].index: <absent> != 1" in message
