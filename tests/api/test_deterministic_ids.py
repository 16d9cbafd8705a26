"""With a test id (X-Respond-Test-Id), the ids respond generates repeat run after run; without, they don't."""

from __future__ import annotations

from tests.api.wire import create
from tests.support.server import scripted_provider
from tests.support.upstream import reply, tool_call


def _run(make_server, upstream, test_id):
    server = make_server([scripted_provider(upstream)])
    client = server.client(test_id)
    upstream.script(reply("hello"), reply(tool_call("f", {}, id="call_fixed")))
    r1 = create(client, model="up/scripted", input="hi")
    r2 = create(client, model="up/scripted", input="again", previous_response_id=r1.id,
                                 tools=[{"type": "function", "name": "f"}])
    items = client.responses.input_items.list(r2.id)
    return [r1.id, r1.output[0].id, r2.id, r2.output[0].id] + [i.id for i in items.data]


def test_ids_are_deterministic_per_test_id(make_server, upstream) -> None:
    first = _run(make_server, upstream, "tests/x.py::test_same")
    second = _run(make_server, upstream, "tests/x.py::test_same")
    assert first == second and len(set(first)) == len(first)
    assert first[0].startswith("resp_") and first[1].startswith("msg_") and first[3].startswith("fc_")
    other = _run(make_server, upstream, "tests/x.py::test_other")
    assert not set(other) & set(first)
    assert _run(make_server, upstream, None) != _run(make_server, upstream, None)


def test_live_servers_ignore_the_test_id_header_unless_asked(make_server, upstream) -> None:
    ids = []
    for _ in range(2):
        server = make_server([scripted_provider(upstream)], test_id_header=False)
        upstream.script(reply("hello"))
        ids.append(create(server.client("tests/x.py::test_same"), model="up/scripted", input="hi").id)
    assert ids[0] != ids[1]  # a client cannot make a live server's ids predictable
