"""Operator-side MCP: servers declared in the config (used by label / connector_id, URL and secret hidden),
URL safety, and secrets kept out of responses, recordings and logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import openai
import pytest

from respond.config import MCPConfig, RecordingConfig, load_config
from respond.responses.tools.mcp_client import MCPServer, resolved_problem, url_problem
from tests.api.wire import create
from tests.support.mcp_server import experiments_server, start_mcp
from tests.support.server import scripted_provider
from tests.support.upstream import reply, tool_call

MODEL = "up/scripted"
SECRET = "operator-secret-31337"


@pytest.fixture
def guarded() -> Any:
    running = start_mcp(experiments_server(), token=SECRET)
    yield running
    running.stop()


def test_declared_server_by_label_and_connector_id(make_server, upstream, guarded, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    path = tmp_path / "respond.yaml"
    path.write_text(f"""
mcp:
  servers:
    - label: lab
      url: {guarded.url}
      connector_id: lab_connector
      description: The lab's experiments.
      headers:
        Authorization: Bearer ${{LAB_TOKEN}}
""")
    config = load_config(path, env={"LAB_TOKEN": SECRET})
    assert config.mcp.servers[0].headers == {"Authorization": f"Bearer {SECRET}"}
    server = make_server([scripted_provider(upstream)], mcp=config.mcp)  # no allowed_urls: declared is trusted
    client = server.client(request.node.nodeid)
    upstream.script(reply(tool_call("get_user_id", {"username": "bob"})), reply("bob is user_456"))
    r = create(client, model=MODEL, input="bob?", tools=[{"type": "mcp", "server_label": "lab",
                                                          "require_approval": "never"}])
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert r.output[1].output == "user_456"
    raw = client.responses.with_raw_response.retrieve(r.id).http_response.text
    assert guarded.url not in raw and SECRET not in raw
    echoed = r.tools[0].model_dump(exclude_none=True)
    assert echoed == {"type": "mcp", "server_label": "lab", "require_approval": "never",
                      "server_description": "The lab's experiments."}
    upstream.script(reply("listed"))
    r = create(client, model=MODEL, input="hi", tools=[{"type": "mcp", "server_label": "anything",
                                                        "connector_id": "lab_connector"}])
    assert r.output[0].server_label == "anything" and len(r.output[0].tools) == 5
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="hi", tools=[{"type": "mcp", "server_label": "nope"}])
    assert err.value.body["param"] == "tools[0].server_url"


def test_request_urls_can_be_turned_off(make_server, upstream, request: pytest.FixtureRequest) -> None:
    server = make_server([scripted_provider(upstream)], mcp=MCPConfig(allow_request_urls=False))
    with pytest.raises(openai.BadRequestError) as err:
        server.client(request.node.nodeid).responses.create(model=MODEL, input="hi", tools=[
            {"type": "mcp", "server_label": "x", "server_url": "https://mcp.example.com/mcp"}])
    assert err.value.body["param"] == "tools[0].server_url" and "declares" in err.value.body["message"]


def test_secrets_stay_out_of_recordings_and_logs(make_server, upstream, guarded, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture,
                                                 request: pytest.FixtureRequest) -> None:
    recordings = tmp_path / "recordings"
    server = make_server([scripted_provider(upstream)], mcp=MCPConfig(allowed_urls=["http://127.0.0.1:"]),
                         recording=RecordingConfig(mode="record", dir=str(recordings)))
    client = server.client(request.node.nodeid)
    upstream.script(reply(tool_call("get_user_id", {"username": "alice"})), reply("alice is user_123"))
    tool = {"type": "mcp", "server_label": "lab", "server_url": guarded.url, "authorization": SECRET,
            "headers": {"X-Extra": "hdr-secret-4242"}, "require_approval": "never"}
    with caplog.at_level(logging.DEBUG):
        r = create(client, model=MODEL, input="alice?", tools=[tool])
    assert r.output[1].output == "user_123"
    files = [p.read_text() for p in recordings.rglob("*.json")]
    endpoints = sorted(json.loads(f)["request"]["endpoint"] for f in files)
    assert "mcp://lab/tools/list" in endpoints and "mcp://lab/tools/call" in endpoints
    assert all(SECRET not in f and "hdr-secret-4242" not in f for f in files)
    assert "tools/call" in caplog.text  # the MCP traffic was logged (at debug), without the secrets
    assert SECRET not in caplog.text and "hdr-secret-4242" not in caplog.text


def test_url_rules() -> None:
    default = MCPConfig()
    assert url_problem("https://mcp.example.com/mcp", default) is None
    for private in ("http://127.0.0.1:8000/mcp", "http://10.1.2.3/mcp", "http://192.168.0.1/mcp",
                    "http://169.254.169.254/latest", "http://[::1]:80/mcp", "http://[::ffff:127.0.0.1]/mcp",
                    "http://localhost/mcp", "http://0.0.0.0/mcp"):
        assert "private" in (url_problem(private, default) or ""), private
    assert url_problem("file:///etc/passwd", default) == "it must be an http(s) URL"
    assert url_problem("http://127.0.0.1:8000/mcp", MCPConfig(allow_private_networks=True)) is None
    allow = MCPConfig(allowed_urls=["http://127.0.0.1:"])
    assert url_problem("http://127.0.0.1:5/mcp", allow) is None
    assert "not among" in (url_problem("https://mcp.example.com/mcp", allow) or "")
    deny = MCPConfig(denied_urls=["https://evil.example.com/"])
    assert "denies" in (url_problem("https://evil.example.com/mcp", deny) or "")


async def test_host_names_resolving_to_private_addresses_are_refused() -> None:
    config = MCPConfig()
    assert "resolves to a private" in (await resolved_problem(MCPServer("x", "http://localhost:1/mcp"), config) or "")
    assert await resolved_problem(MCPServer("x", "http://localhost:1/mcp", trusted=True), config) is None
    allowed = MCPConfig(allowed_urls=["http://localhost:"])
    assert await resolved_problem(MCPServer("x", "http://localhost:1/mcp"), allowed) is None
