"""The latency one MCP call round adds: Respond vs calling the MCP server directly.

    python bench/mcp_latency.py [--requests 50]

Processes: an MCP server (the `mcp` SDK's MCPServer, streamable HTTP, tool `echo`) and `respond serve`
(SQLite) run as subprocesses; the scripted upstream (tests/support/upstream.py, instant replies) and the
clients run in this process. Sequential requests (c=1), after a warm-up. Measured:

- direct, fresh session: open a session, call `echo`, close (what Respond does per call);
- direct, one session: `echo` on an open session (the floor);
- through Respond, the call: from `response.mcp_call.in_progress` to `response.mcp_call.completed` as the
  streaming client receives them;
- through Respond, whole responses: a plain one-turn answer vs a response with one MCP round (model turn ->
  `echo` -> model turn), the chain's listing reused (previous_response_id), as the client sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve_mcp() -> None:
    import socket

    import uvicorn
    from mcp.server.mcpserver import MCPServer

    srv = MCPServer("bench")

    @srv.tool(description="Echo the text back.", structured_output=False)
    def echo(text: str) -> str:
        return text

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(srv.streamable_http_app(), log_level="warning")).run(sockets=[sock])


def wait_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        raise RuntimeError(f"MCP server did not start: {line!r}")
    return int(line.split()[1])


def pct(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"p50 {statistics.median(ms):7.2f} ms   p90 {ms[int(len(ms) * 0.9) - 1]:7.2f} ms   (n={len(ms)})"


async def direct(url: str, n: int) -> tuple[list[float], list[float]]:
    import ssl

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    tls = ssl.create_default_context()
    fresh: list[float] = []
    for i in range(n + 5):
        start = time.perf_counter()
        async with httpx2.AsyncClient(verify=tls) as http, Client(streamable_http_client(url, http_client=http),
                                                                   cache=None) as client:
            await client.call_tool("echo", {"text": "hi"})  # (the SDK lists the tools first on a fresh session)
        if i >= 5:
            fresh.append(time.perf_counter() - start)
    reused: list[float] = []
    async with httpx2.AsyncClient() as http, Client(streamable_http_client(url, http_client=http),
                                                     cache=None) as client:
        await client.list_tools()
        for i in range(n + 5):
            start = time.perf_counter()
            await client.call_tool("echo", {"text": "hi"})
            if i >= 5:
                reused.append(time.perf_counter() - start)
    return fresh, reused


_http: Any = None


def stream(base_url: str, body: dict[str, Any]) -> tuple[float, dict[str, float], dict[str, Any]]:
    global _http
    import httpx

    if _http is None:
        _http = httpx.Client(timeout=30)  # one client: keep-alive, one TLS context
    marks: dict[str, float] = {}
    final: dict[str, Any] = {}
    start = time.perf_counter()
    with _http.stream("POST", f"{base_url}/responses", json={**body, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                marks.setdefault(event["type"], time.perf_counter())
                if event["type"] in ("response.completed", "response.failed", "response.incomplete"):
                    final = event["response"]
    return time.perf_counter() - start, marks, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--serve-mcp", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mcp:
        serve_mcp()
        return

    from tests.support.upstream import ScriptedUpstream, UpstreamServer, reply, tool_call

    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    mcp_proc = subprocess.Popen([sys.executable, __file__, "--serve-mcp"], stdout=subprocess.PIPE, text=True,
                                env=env)
    upstream = UpstreamServer(ScriptedUpstream())
    upstream.start()
    with tempfile.TemporaryDirectory(prefix="respond-mcp-bench-") as tmp:
        respond = None
        try:
            mcp_url = f"http://127.0.0.1:{wait_port(mcp_proc)}/mcp"
            config = Path(tmp) / "respond.yaml"
            config.write_text(json.dumps({
                "data_dir": tmp, "log_level": "warning",
                "providers": [{"id": "up", "type": "openai", "base_url": upstream.upstream.base_url,
                               "api_key": "x", "models": ["scripted"]}],
                "mcp": {"allowed_urls": ["http://127.0.0.1:"]}}))
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            respond = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--config", str(config),
                                        "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            base_url = f"http://127.0.0.1:{port}/v1"
            import httpx
            for _ in range(300):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)

            fresh, reused = asyncio.run(direct(mcp_url, args.requests))

            def answer(body: dict[str, Any]) -> Any:
                if body["messages"][-1]["role"] == "tool" or "tools" not in body:
                    return reply("done")
                return reply(tool_call("echo", {"text": "hi"}))

            upstream.upstream.script(*[answer] * (4 * args.requests + 100))
            tool = {"type": "mcp", "server_label": "bench", "server_url": mcp_url, "require_approval": "never"}
            _, _, first = stream(base_url, {"model": "up/scripted", "input": "start", "tools": [tool]})
            plain, with_mcp, in_call = [], [], []
            for i in range(args.requests + 5):
                elapsed, _, _ = stream(base_url, {"model": "up/scripted", "input": "hi", "store": False})
                if i >= 5:
                    plain.append(elapsed)
                elapsed, marks, final = stream(base_url, {"model": "up/scripted", "input": "echo hi",
                                                          "tools": [tool], "previous_response_id": first["id"]})
                assert [o["type"] for o in final["output"]] == ["mcp_call", "message"], final["output"]
                if i >= 5:
                    with_mcp.append(elapsed)
                    in_call.append(marks["response.mcp_call.completed"] - marks["response.mcp_call.in_progress"])
            print(f"direct MCP call, fresh session          {pct(fresh)}")
            print(f"direct MCP call, open session           {pct(reused)}")
            print(f"Respond: mcp_call in_progress->completed {pct(in_call)}")
            print(f"Respond: plain response (1 model turn)   {pct(plain)}")
            print(f"Respond: response with one MCP round     {pct(with_mcp)}")
            print(f"added by one MCP round (p50 difference)  {1000 * (statistics.median(with_mcp) - statistics.median(plain)):7.2f} ms")
        finally:
            if respond is not None:
                respond.terminate()
                respond.wait(10)
            mcp_proc.terminate()
            mcp_proc.wait(10)
            upstream.stop()


if __name__ == "__main__":
    main()
