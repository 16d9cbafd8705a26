"""openai-node (npm `openai`) and the OpenAI Agents SDK for JavaScript (`@openai/agents`) against Respond.

Each test runs one scenario of node/clients.mjs with Node against the real server, whose model is the
scripted upstream: a streamed run with a function tool continued by its output, structured output parsed
with a zod schema, and an agent run (streamed) that hands off to another agent which calls a tool and
answers with structured output. The packages install once into ~/.cache/respond/openai-node
(tests/support/npm.py); the tests skip only where node/npm are missing or the registry is unreachable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.npm import npm_package
from tests.support.upstream import reply, tool_call

OPENAI_NODE = "7.59.0"
AGENTS_JS = "0.20.0"
ZOD = "4.6.7"
SCRIPT = Path(__file__).parent / "node" / "clients.mjs"
TIMEOUT = 60


@pytest.fixture(scope="session")
def node_modules() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    prefix = npm_package("openai", OPENAI_NODE, "openai-node")
    npm_package("@openai/agents", AGENTS_JS, "openai-node")
    npm_package("zod", ZOD, "openai-node")
    return prefix / "node_modules"


def run_node(node_modules: Path, tmp_path: Path, server: Any, test_id: str, scenario: str) -> dict[str, Any]:
    # ES modules resolve packages next to the script: a copy of it beside a link to the cached node_modules
    (tmp_path / "node_modules").symlink_to(node_modules)
    script = tmp_path / SCRIPT.name
    shutil.copy(SCRIPT, script)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "RESPOND_BASE_URL": server.base_url, "RESPOND_TEST_ID": test_id, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    try:
        done = subprocess.run(["node", str(script), scenario], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"node {scenario} did not finish in {TIMEOUT} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"node printed no result ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert done.returncode == 0 and "error" not in out, f"{out.get('error')}\n{done.stderr[-3000:]}"
    return out


def test_streamed_run_with_a_function_tool(node_modules, server, upstream, tmp_path, request) -> None:
    upstream.script(reply(tool_call("get_weather", {"city": "Paris"}, id="call_w1")),
                    reply("Sunny ", "in Paris."))
    out = run_node(node_modules, tmp_path, server, request.node.nodeid, "toolsStreamed")
    assert out["call"] == {"name": "get_weather", "arguments": '{"city":"Paris"}', "call_id": "call_w1"}
    assert out["argumentDeltas"] == '{"city":"Paris"}'
    assert out["types"][:2] == ["response.created", "response.in_progress"]
    assert "response.function_call_arguments.done" in out["types"] and out["types"][-1] == "response.completed"
    assert (out["text"], out["outputText"], out["status"]) == ("Sunny in Paris.", "Sunny in Paris.", "completed")
    first, second = upstream.chat_bodies
    assert first["tools"][0]["function"]["name"] == "get_weather" and first["tools"][0]["function"]["strict"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_w1", "content": '{"sky":"sunny"}'}


def test_structured_output(node_modules, server, upstream, tmp_path, request) -> None:
    upstream.script(reply('{"city": "Paris", "temperature": 21, "sky": "sunny"}'))
    out = run_node(node_modules, tmp_path, server, request.node.nodeid, "structured")
    assert out["parsed"] == {"city": "Paris", "temperature": 21, "sky": "sunny"}
    fmt = upstream.last_chat["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "weather"
    assert fmt["json_schema"]["schema"]["required"] == ["city", "temperature", "sky"]


def test_agents_js_handoff_tool_and_structured_output(node_modules, server, upstream, tmp_path, request) -> None:
    upstream.script(
        reply(tool_call("transfer_to_Weather_agent", {}, id="call_h1")),
        reply(tool_call("get_weather", {"city": "Paris"}, id="call_t1")),
        reply('{"city": "Paris", "summary": "Sunny, 21 C."}'),
    )
    out = run_node(node_modules, tmp_path, server, request.node.nodeid, "agentsHandoff")
    assert out["lastAgent"] == "Weather agent"
    assert out["finalOutput"] == {"city": "Paris", "summary": "Sunny, 21 C."}
    assert out["calls"] == ["Paris"]
    assert {"handoff_requested", "handoff_occurred", "tool_called", "tool_output"} <= set(out["events"])
    triage, weather, final = upstream.chat_bodies
    assert [t["function"]["name"] for t in triage["tools"]] == ["transfer_to_Weather_agent"]
    assert [t["function"]["name"] for t in weather["tools"]] == ["get_weather"]
    assert final["response_format"]["type"] == "json_schema"
    assert final["messages"][-1] == {"role": "tool", "tool_call_id": "call_t1", "content": "sunny, 21 C in Paris"}
    upstream.assert_consumed()
