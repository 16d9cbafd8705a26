"""Codex CLI (`@openai/codex` from npm) runs against Respond, configured as a user would.

`codex exec` talks to the real Respond server (a `model_providers` entry with `wire_api = "responses"`,
base_url = Respond's /v1, a dummy key; no login) whose model is the scripted upstream: the script makes the
model run a shell command through Codex's `exec_command` tool, or call a function of a `namespace` tool
(Codex groups an MCP server's tools as the namespace `mcp__<server>`), then answer. Codex sends what it
always sends: `store: false`, `include: ["reasoning.encrypted_content"]`, `client_metadata`, developer
messages, function tools and a namespace tool.

Codex installs once into ~/.cache/respond/codex (tests/support/npm.py); the tests skip only where npm is
missing or the registry unreachable. A hung codex is killed after CODEX_TIMEOUT seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.npm import npm_package
from tests.support.server import TEST_ID_HEADER, scripted_provider
from tests.support.upstream import chunk, chunks, reply, tool_call

CODEX_VERSION = "0.171.0"
CODEX_TIMEOUT = 60


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    prefix = npm_package("@openai/codex", CODEX_VERSION, "codex")
    binary = prefix / "node_modules" / ".bin" / "codex"
    assert binary.exists(), f"the @openai/codex package has no codex binary at {binary}"
    return binary


def codex_config(base_url: str, test_id: str, mcp_url: str | None = None, catalog: Path | None = None) -> str:
    """The config.toml pointing Codex at Respond. `web_search = "disabled"`: Codex would otherwise offer the
    hosted `web_search` tool (`external_web_access: false`), which needs a web search provider."""
    lines = [
        'model = "up/scripted"',
        'model_provider = "respond"',
        'web_search = "disabled"',
        "check_for_update_on_startup = false",
        *([f"model_catalog_json = {json.dumps(str(catalog))}"] if catalog else []),
        "",
        "[model_providers.respond]",
        'name = "Respond"',
        f'base_url = "{base_url}"',
        'wire_api = "responses"',
        'env_key = "RESPOND_API_KEY"',
        f"http_headers = {{ {json.dumps(TEST_ID_HEADER)} = {json.dumps(test_id)} }}",
        "request_max_retries = 0",
        "stream_max_retries = 0",
    ]
    if mcp_url:
        lines += ["", "[mcp_servers.lab]", f'url = "{mcp_url}"']
    return "\n".join(lines) + "\n"


def run_codex(codex_bin: Path, tmp_path: Path, config: str, prompt: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                   list[dict[str, Any]]]:
    home = tmp_path / "codex-home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(config)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "CODEX_HOME": str(home),
           "RESPOND_API_KEY": "dummy-key", "LANG": "C.UTF-8", "NO_COLOR": "1"}
    try:
        done = subprocess.run(
            [str(codex_bin), "exec", "--json", "--skip-git-repo-check", "--ephemeral",
             "--dangerously-bypass-approvals-and-sandbox", "--color", "never", "-C", str(work), prompt],
            env=env, cwd=work, capture_output=True, text=True, timeout=CODEX_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"codex exec did not finish in {CODEX_TIMEOUT} s; stderr: {(exc.stderr or b'')[-2000:]!r}")
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return done, events


def agent_messages(events: list[dict[str, Any]]) -> list[str]:
    return [e["item"].get("text", "") for e in events
            if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"]


def text_of(content: str | list[dict[str, Any]]) -> str:
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def turn_bodies(upstream: Any) -> list[dict[str, Any]]:
    """The chat requests of Codex's turns (Codex may also ask for side things, e.g. a title)."""
    return [b for b in upstream.chat_bodies if any(t["function"]["name"] == "exec_command"
                                                   for t in b.get("tools") or [])]


def exec_turn_with_reasoning() -> Any:
    """The model thinks (reasoning_content, as vLLM / llama.cpp / DeepSeek stream it), says a word, and calls
    exec_command."""
    call = {"index": 0, "id": "call_exec1", "type": "function", "function": {"name": "exec_command",
                                                                           "arguments": ""}}
    return chunks([chunk({"role": "assistant", "content": ""}),
                   chunk({"reasoning_content": "The user wants the output of echo; "}),
                   chunk({"reasoning_content": "run it first."}),
                   chunk({"content": "Let me run it."}),
                   chunk({"tool_calls": [call]}),
                   chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"cmd": "echo '}}]}),
                   chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'hello-respond"}'}}]}),
                   chunk({}, "tool_calls")])


def test_codex_runs_a_command_and_answers(codex_bin, make_server, upstream, tmp_path, request) -> None:
    """The whole loop, and the model's reasoning kept across Codex's stateless turns: Codex stores nothing
    (store=false) and sends the reasoning item back with its encrypted_content; this provider takes
    reasoning back (`replay_reasoning`), so turn 2 carries it as `reasoning_content`."""
    server = make_server([scripted_provider(upstream).model_copy(update={"replay_reasoning": True})])
    upstream.script(exec_turn_with_reasoning(), reply("The command printed hello-respond."))
    done, events = run_codex(codex_bin, tmp_path, codex_config(server.base_url, request.node.nodeid),
                             "Run `echo hello-respond` and tell me what it printed.")
    assert done.returncode == 0, f"codex failed:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    assert "The command printed hello-respond." in agent_messages(events)
    commands = [e["item"] for e in events if e.get("type") == "item.completed"
                and e.get("item", {}).get("type") == "command_execution"]
    assert commands and "echo hello-respond" in commands[0]["command"]
    assert "hello-respond" in commands[0]["aggregated_output"]

    first, second = turn_bodies(upstream)[:2]
    offered = {t["function"]["name"] for t in first["tools"]}
    assert {"exec_command", "write_stdin"} <= offered
    # the namespace tool Codex always sends (its sub-agent tools) is offered function by function
    assert any(name.startswith("multi_agent_v1__") for name in offered)
    assert first["messages"][0]["role"] == "system"  # Codex's developer message
    assert first["messages"][-1] == {"role": "user", "content": "Run `echo hello-respond` and tell me what it "
                                                                "printed."}
    # what Codex sends that chat backends don't know stays in Respond
    for key in ("client_metadata", "include", "store", "reasoning", "input", "metadata"):
        assert key not in first, key
    # turn 2: the call (replayed from the items Codex sent back: store=false) and the command's output
    call_turn = next(m for m in second["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
    assert call_turn["content"] == "Let me run it."
    assert call_turn["reasoning_content"] == "The user wants the output of echo; run it first."
    assert call_turn["tool_calls"][0]["id"] == "call_exec1"
    assert call_turn["tool_calls"][0]["function"]["name"] == "exec_command"
    assert json.loads(call_turn["tool_calls"][0]["function"]["arguments"]) == {"cmd": "echo hello-respond"}
    output = next(m for m in second["messages"] if m["role"] == "tool")
    assert output["tool_call_id"] == "call_exec1" and "hello-respond" in text_of(output["content"])
    upstream.assert_consumed()


def test_codex_calls_a_namespace_function(codex_bin, server, upstream, mcp_experiments, tmp_path,
                                          request) -> None:
    """Codex offers the MCP server `lab`'s tools as the namespace `mcp__lab`; the model calls one as
    `mcp__lab__get_user_id`, Respond returns a `function_call` with `namespace: "mcp__lab"`, Codex calls the
    MCP server and sends the result back as `function_call_output`."""
    upstream.script(
        reply(tool_call("mcp__lab__get_user_id", {"username": "alice"}, id="call_ns1")),
        reply("alice is user_123."),
    )
    done, events = run_codex(codex_bin, tmp_path, codex_config(server.base_url, request.node.nodeid,
                                                              mcp_experiments.url),
                             "What is alice's user id?")
    assert done.returncode == 0, f"codex failed:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    assert "alice is user_123." in agent_messages(events)
    assert ("get_user_id", {"username": "alice"}) in mcp_experiments.calls

    first, second = turn_bodies(upstream)[:2]
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert {"mcp__lab__get_user_id", "mcp__lab__get_experiment_results"} <= set(offered)
    assert offered["mcp__lab__get_user_id"]["parameters"]["properties"]["username"]["type"] == "string"
    call_turn = next(m for m in second["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
    assert call_turn["tool_calls"][0]["function"]["name"] == "mcp__lab__get_user_id"
    output = next(m for m in second["messages"] if m["role"] == "tool")
    assert output["tool_call_id"] == "call_ns1" and "user_123" in text_of(output["content"])
    upstream.assert_consumed()


# A model Codex knows to take `apply_patch` as a custom (free-form, Lark grammar) tool, as it does for its
# own models: a minimal entry of Codex's model catalog (`model_catalog_json`).
PATCH_MODEL = {
    "slug": "up/scripted", "display_name": "Respond (scripted)", "description": "A model behind Respond.",
    "base_instructions": "You are a coding agent. Use the tools to change files.",
    "apply_patch_tool_type": "freeform", "supports_search_tool": False, "shell_type": "shell_command",
    "visibility": "list", "supported_in_api": True, "priority": 1, "context_window": 128000,
    "default_reasoning_level": "medium", "supported_reasoning_levels": [], "support_verbosity": False,
    "truncation_policy": {"mode": "tokens", "limit": 10000}, "supports_parallel_tool_calls": True,
    "experimental_supported_tools": [], "input_modalities": ["text"], "supports_reasoning_summaries": False,
}
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from respond\n*** End Patch\n"


def test_codex_applies_a_patch_through_a_custom_tool(codex_bin, server, upstream, tmp_path, request) -> None:
    """Codex offers `apply_patch` as a `custom` tool with a Lark grammar; the model's call comes back as a
    `custom_tool_call` (input streamed as custom_tool_call_input deltas), Codex applies the patch and
    answers with a `custom_tool_call_output`."""
    catalog = tmp_path / "models.json"
    catalog.write_text(json.dumps({"models": [PATCH_MODEL]}))
    upstream.script(reply(tool_call("apply_patch", {"input": PATCH}, id="call_patch1")),
                    reply("Created hello.txt."))
    config = codex_config(server.base_url, request.node.nodeid, catalog=catalog)
    done, events = run_codex(codex_bin, tmp_path, config, "Create hello.txt saying hello from respond.")
    assert done.returncode == 0, f"codex failed:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    assert (tmp_path / "work" / "hello.txt").read_text() == "hello from respond\n"
    assert "Created hello.txt." in agent_messages(events)

    first, second = turn_bodies(upstream)[:2]
    patch_fn = next(t["function"] for t in first["tools"] if t["function"]["name"] == "apply_patch")
    assert patch_fn["parameters"]["required"] == ["input"]
    assert "lark grammar" in patch_fn["parameters"]["properties"]["input"]["description"]
    call_turn = next(m for m in second["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
    assert json.loads(call_turn["tool_calls"][0]["function"]["arguments"]) == {"input": PATCH}
    output = next(m for m in second["messages"] if m["role"] == "tool")
    assert output["tool_call_id"] == "call_patch1" and "hello.txt" in text_of(output["content"])
    upstream.assert_consumed()
