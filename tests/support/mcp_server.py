"""Real MCP servers for tests: the official `mcp` SDK's MCPServer (FastMCP) on a random loopback port.

`start_mcp(server, transport="streamable_http" | "sse", token=None)` serves an `MCPServer` over streamable
HTTP (`.url` ends in `/mcp`) or SSE (`.url` ends in `/sse`) with uvicorn in a background thread. With a
`token`, every HTTP request must carry `Authorization: Bearer <token>` (401 otherwise). The running server
logs what it saw: `.requests` ((HTTP method, path)), `.methods` (JSON-RPC methods, e.g. "tools/list", "tools/call"), `.calls` (tool name +
arguments) and `.headers` (lower-cased request headers of each HTTP request). `sabotage` makes it answer a
JSON-RPC method with garbage or slowly (see `_Watch`).

`experiments_server()` is the server of seed 003 (tools and descriptions exactly as gpt-4o saw them).
Fixture `mcp_experiments`: that server over streamable HTTP, one per test session (logs cleared per test).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer

SEED_DESCRIPTIONS = {
    "get_user_id": "\n Get the user ID for a given username. This ID is needed for other operations.\n\n :param "
                   "username: The username to look up\n :return: The user ID for the username\n ",
    "get_user_permissions": "\n Get the permissions for a user ID. Requires a valid user ID from get_user_id.\n\n "
                            ":param user_id: The user ID to check permissions for\n :return: The permissions for "
                            "the user\n ",
    "check_file_access": "\n Check if a user can access a specific file. Requires a valid user ID.\n\n :param "
                         "user_id: The user ID to check access for\n :param filename: The filename to check access "
                         "to\n :return: Whether the user can access the file (yes/no)\n ",
    "get_experiment_id": "\n Get the experiment ID for a given experiment name. This ID is needed to get results.\n\n"
                         " :param experiment_name: The name of the experiment\n :return: The experiment ID\n ",
    "get_experiment_results": "\n Get the results for an experiment ID. Requires a valid experiment ID from "
                              "get_experiment_id.\n\n :param experiment_id: The experiment ID to get results for\n "
                              ":return: The experiment results\n ",
}

USERS = {"alice": "user_123", "bob": "user_456", "charlie": "user_789"}
EXPERIMENTS = {"temperature_test": "exp_001", "pressure_test": "exp_002", "chemical_reaction": "exp_003",
               "boiling_point": "exp_004"}


def experiments_server() -> MCPServer:
    """Seed 003's MCP server: users, permissions, files and experiments."""
    srv = MCPServer("experiments")

    @srv.tool(description=SEED_DESCRIPTIONS["get_user_id"], structured_output=False)
    def get_user_id(username: str) -> str:
        return USERS.get(username, "unknown_user")

    @srv.tool(description=SEED_DESCRIPTIONS["get_user_permissions"], structured_output=False)
    def get_user_permissions(user_id: str) -> str:
        return {"user_123": "admin", "user_456": "user", "user_789": "guest"}.get(user_id, "none")

    @srv.tool(description=SEED_DESCRIPTIONS["check_file_access"], structured_output=False)
    def check_file_access(user_id: str, filename: str) -> str:
        return "yes" if user_id == "user_123" or filename.startswith("public") else "no"

    @srv.tool(description=SEED_DESCRIPTIONS["get_experiment_id"], structured_output=False)
    def get_experiment_id(experiment_name: str) -> str:
        return EXPERIMENTS.get(experiment_name, "unknown_experiment")

    @srv.tool(description=SEED_DESCRIPTIONS["get_experiment_results"], structured_output=False)
    def get_experiment_results(experiment_id: str) -> str:
        return {"exp_004": "100C at sea level"}.get(experiment_id, "no results")

    return srv


def utility_server() -> MCPServer:
    """Tools for error paths: a slow one, a failing one, and `echo`."""
    srv = MCPServer("utility")

    @srv.tool(description="Echo the text back.", structured_output=False)
    def echo(text: str) -> str:
        return text

    @srv.tool(description="Wait, then answer.", structured_output=False)
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "finally"

    @srv.tool(description="Always fails.", structured_output=False)
    def explode(reason: str) -> str:
        raise ValueError(reason)

    return srv


@dataclass
class RunningMCP:
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    methods: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (HTTP method, path)

    def clear(self) -> None:
        self.requests.clear()
        self.methods.clear()
        self.calls.clear()
        self.headers.clear()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class _Watch:
    """ASGI wrapper: checks the bearer token, logs what the MCP server is asked, and sabotages on request:
    `sabotage={"tools/call": "garbage"}` answers that JSON-RPC method with a non-JSON body,
    `{"tools/list": 30.0}` waits that many seconds first."""

    def __init__(self, app: Any, running: RunningMCP, token: str | None,
                 sabotage: dict[str, str | float] | None = None) -> None:
        self.app, self.running, self.token, self.sabotage = app, running, token, sabotage or {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.running.headers.append(headers)
        self.running.requests.append((scope["method"], scope["path"]))
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "unauthorized"}'})
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:  # the whole JSON-RPC body, then replayed to the app
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        methods = self._log(body)
        for method in methods:
            action = self.sabotage.get(method)
            if action == "garbage":
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b"<<not json-rpc>>"})
                return
            if isinstance(action, (int, float)):
                await asyncio.sleep(action)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _log(self, body: bytes) -> list[str]:
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return []
        methods = []
        for entry in data if isinstance(data, list) else [data]:
            if isinstance(entry, dict) and isinstance(entry.get("method"), str):
                methods.append(entry["method"])
                self.running.methods.append(entry["method"])
                if entry["method"] == "tools/call":
                    params = entry.get("params") or {}
                    self.running.calls.append((params.get("name"), params.get("arguments") or {}))
        return methods


def start_mcp(srv: MCPServer | Any, *, transport: str = "streamable_http", token: str | None = None,
              sse_path: str = "/sse", sabotage: dict[str, str | float] | None = None) -> RunningMCP:
    """Serve `srv` (an MCPServer, or any ASGI app for garbage-answering servers) on a random loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if isinstance(srv, MCPServer):
        app = srv.sse_app(sse_path=sse_path) if transport == "sse" else srv.streamable_http_app()
        path = sse_path if transport == "sse" else "/mcp"
    else:
        app, path = srv, "/mcp"
    running = RunningMCP(url=f"http://127.0.0.1:{port}{path}", server=None, thread=None)  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(_Watch(app, running, token, sabotage), log_config=None, access_log=False,
                                           lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"mcp-{port}")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the MCP test server did not start")
        time.sleep(0.01)
    running.server, running.thread = server, thread
    return running


@pytest.fixture(scope="session")
def mcp_experiments_server() -> Any:
    running = start_mcp(experiments_server())
    yield running
    running.stop()


@pytest.fixture
def mcp_experiments(mcp_experiments_server: RunningMCP) -> RunningMCP:
    mcp_experiments_server.clear()
    return mcp_experiments_server
