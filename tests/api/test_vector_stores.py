"""/v1/vector_stores with the official SDK against the real server (SQLite and PostgreSQL): stores, files,
batches, background ingestion of real PDF / DOCX / HTML / CSV / JSON / code files, search (keyword, vector,
hybrid, filters), counts and statuses that move as ingestion progresses, and failures that stay contained.

Most tests embed with the scripted upstream's `up/scripted-embed` (deterministic hash vectors: fast, and
keyword search is real); `test_semantic_search_local_model` uses the embedded all-MiniLM-L6-v2.
"""

from __future__ import annotations

import openai
import pytest

from tests.support.conformance import validate_error_envelope
from tests.support.retrieval import (
    make_docx,
    make_pdf,
    validate,
    validate_content_page,
    validate_list,
    validate_search_page,
    wait_for_file,
    wait_for_store,
)

EMBED = {"embedding_model": "up/scripted-embed"}

DOCS = {
    "llama.pdf": make_pdf(["Llama 4 Maverick is a Mixture-of-Experts model with 128 experts.",
                           "Llama Stack standardizes the building blocks of AI applications."]),
    "garden.docx": make_docx(["Tomatoes need full sun and regular watering.",
                              "Basil grows well next to tomatoes."], table=[["plant", "season"], ["kale", "winter"]]),
    "page.html": b"<html><head><style>p{}</style><script>var hidden=1</script></head><body><h1>Volcanoes</h1>"
                 b"<p>Magma rises through the crust and erupts as lava.</p></body></html>",
    "table.csv": b"city,country\nLisbon,Portugal\nKyoto,Japan\n",
    "config.json": b'{"service": "respond", "feature": "quantum entanglement cache"}',
    "sort.py": b"def bubble_sort(items):\n    '''Sort a list with the bubble sort algorithm.'''\n    return sorted(items)\n",
    "notes.md": b"# Astronomy\n\nJupiter is the largest planet of the solar system.\n",
}


def upload(client: openai.OpenAI, name: str, data: bytes) -> str:
    return client.files.create(file=(name, data), purpose="assistants").id


def raw(client: openai.OpenAI, method: str, path: str, **kwargs) -> dict:
    response = client._client.request(method, f"{client.base_url}{path}".replace("/v1//", "/v1/"), **kwargs)
    return response.json()


def test_store_lifecycle(any_client: openai.OpenAI) -> None:
    client = any_client
    store = client.vector_stores.create(name="docs", metadata={"team": "a"}, extra_body=EMBED,
                                        expires_after={"anchor": "last_active_at", "days": 1})
    got = raw(client, "GET", f"vector_stores/{store.id}")
    validate(got)
    assert got["name"] == "docs" and got["metadata"] == {"team": "a"} and got["status"] == "completed"
    assert got["file_counts"] == {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
    assert got["expires_at"] == got["last_active_at"] + 86400
    updated = client.vector_stores.update(store.id, name="renamed", metadata={"team": "b"})
    assert updated.name == "renamed" and updated.metadata == {"team": "b"}
    other = client.vector_stores.create(name="second", extra_body=EMBED)
    page = raw(client, "GET", "vector_stores?limit=1")
    validate_list(page)
    assert page["data"][0]["id"] == other.id and page["has_more"] is True
    after = client.vector_stores.list(after=other.id, limit=1)
    assert after.data[0].id == store.id
    assert client.vector_stores.delete(store.id).deleted is True
    with pytest.raises(openai.NotFoundError) as err:
        client.vector_stores.retrieve(store.id)
    validate_error_envelope(err.value.response.json(), 404)


def test_ingest_every_format_and_search(any_client: openai.OpenAI) -> None:
    client = any_client
    ids = {name: upload(client, name, data) for name, data in DOCS.items()}
    store = client.vector_stores.create(name="formats", file_ids=list(ids.values()), extra_body=EMBED)
    assert store.file_counts.total == len(DOCS)
    done = wait_for_store(client, store.id)
    assert done.file_counts.completed == len(DOCS), client.vector_stores.files.list(store.id)
    assert done.status == "completed" and done.usage_bytes > 0
    for name, needle in [("llama.pdf", "128 experts"), ("garden.docx", "Basil grows"), ("garden.docx", "kale"),
                         ("page.html", "Magma rises"), ("table.csv", "Kyoto, Japan"),
                         ("config.json", "quantum entanglement"), ("sort.py", "bubble sort"),
                         ("notes.md", "largest planet")]:
        content = raw(client, "GET", f"vector_stores/{store.id}/files/{ids[name]}/content")
        validate_content_page(content)
        assert needle in " ".join(p["text"] for p in content["data"]), (name, content)
    html = " ".join(p.text for p in client.vector_stores.files.content(ids["page.html"], vector_store_id=store.id))
    assert "hidden" not in html and "<p>" not in html

    page = raw(client, "POST", f"vector_stores/{store.id}/search",
               json={"query": "How many experts does Llama 4 Maverick have?",
                     "ranking_options": {"hybrid_search": {"embedding_weight": 0, "text_weight": 1}}})
    validate_search_page(page)
    assert page["data"][0]["file_id"] == ids["llama.pdf"] and page["data"][0]["filename"] == "llama.pdf"
    assert "128 experts" in page["data"][0]["content"][0]["text"]
    assert 0 < page["data"][0]["score"] <= 1

    hybrid = client.vector_stores.search(store.id, query="lava erupts from volcanoes", max_num_results=3)
    assert hybrid.data[0].file_id == ids["page.html"] and len(hybrid.data) <= 3
    assert all(0 < h.score <= 1 for h in hybrid.data)
    vector = client.vector_stores.search(store.id, query="lava", extra_body={"search_mode": "vector"},
                                         max_num_results=50)
    assert len(vector.data) == len(DOCS)  # every chunk has a vector: an exact scan ranks them all


def test_attributes_filters(any_client: openai.OpenAI) -> None:
    client = any_client
    store = client.vector_stores.create(name="filters", extra_body=EMBED)
    rows = [("alpha", {"year": 2021, "team": "red", "public": True}),
            ("beta", {"year": 2023, "team": "blue", "public": False}),
            ("gamma", {"year": 2024, "team": "red", "public": False}),
            ("delta", {"year": "unknown", "team": "green"})]
    ids = {}
    for word, attributes in rows:
        ids[word] = upload(client, f"{word}.txt", f"The shared report about rivers, written by {word}.".encode())
        attached = client.vector_stores.files.create(store.id, file_id=ids[word], attributes=attributes)
        validate(raw(client, "GET", f"vector_stores/{store.id}/files/{ids[word]}"))
        assert attached.attributes == attributes
    wait_for_store(client, store.id)

    def hits(filters, mode="keyword") -> set[str]:
        page = raw(client, "POST", f"vector_stores/{store.id}/search",
                   json={"query": "shared report rivers", "filters": filters, "search_mode": mode,
                         "max_num_results": 50})
        validate_search_page(page)
        names = {v: k for k, v in ids.items()}
        return {names[h["file_id"]] for h in page["data"]}

    for mode in ("keyword", "vector", "hybrid"):
        assert hits({"type": "eq", "key": "team", "value": "red"}, mode) == {"alpha", "gamma"}
        assert hits({"type": "gte", "key": "year", "value": 2023}, mode) == {"beta", "gamma"}
    assert hits({"type": "ne", "key": "team", "value": "red"}) == {"beta", "delta"}
    assert hits({"type": "lt", "key": "year", "value": 2024}) == {"alpha", "beta"}  # "unknown" is no number
    assert hits({"type": "gt", "key": "year", "value": 2021}) == {"beta", "gamma"}
    assert hits({"type": "lte", "key": "year", "value": 2021}) == {"alpha"}
    assert hits({"type": "eq", "key": "public", "value": True}) == {"alpha"}
    assert hits({"type": "in", "key": "team", "value": ["green", "blue"]}) == {"beta", "delta"}
    assert hits({"type": "nin", "key": "team", "value": ["green", "blue"]}) == {"alpha", "gamma"}
    assert hits({"type": "and", "filters": [{"type": "eq", "key": "team", "value": "red"},
                                            {"type": "gt", "key": "year", "value": 2022}]}) == {"gamma"}
    assert hits({"type": "or", "filters": [
        {"type": "eq", "key": "team", "value": "green"},
        {"type": "and", "filters": [{"type": "eq", "key": "team", "value": "red"},
                                    {"type": "lt", "key": "year", "value": 2022}]}]}) == {"alpha", "delta"}
    # attributes updated later are filtered on too
    client.vector_stores.files.update(ids["delta"], vector_store_id=store.id, attributes={"team": "red"})
    assert hits({"type": "eq", "key": "team", "value": "red"}) == {"alpha", "gamma", "delta"}

    for bad, param in [({"type": "like", "key": "a", "value": 1}, "filters.type"),
                       ({"type": "in", "key": "a", "value": 1}, "filters.value"),
                       ({"type": "and", "filters": []}, "filters.filters")]:
        with pytest.raises(openai.BadRequestError) as err:
            client.vector_stores.search(store.id, query="x", filters=bad)  # type: ignore[arg-type]
        validate_error_envelope(err.value.response.json(), 400, param=param)


def test_search_options_and_errors(any_client: openai.OpenAI) -> None:
    client = any_client
    store = client.vector_stores.create(name="opts", extra_body=EMBED)
    empty = client.vector_stores.search(store.id, query="anything")
    assert empty.data == []
    for i in range(3):
        client.vector_stores.files.create(store.id, file_id=upload(client, f"n{i}.txt", f"penguin fact {i}".encode()))
    wait_for_store(client, store.id)
    assert len(client.vector_stores.search(store.id, query="penguin", max_num_results=2).data) == 2
    both = raw(client, "POST", f"vector_stores/{store.id}/search", json={"query": ["penguin", "fact 1"]})
    assert both["search_query"] == ["penguin", "fact 1"]
    rewritten = raw(client, "POST", f"vector_stores/{store.id}/search",
                    json={"query": "What is the penguin fact?", "rewrite_query": True})
    assert rewritten["search_query"] == ["penguin fact"]
    strict = client.vector_stores.search(store.id, query="penguin", ranking_options={"score_threshold": 1.0})
    assert all(h.score >= 1.0 for h in strict.data)
    for body, param in [({"query": ""}, "query"), ({"query": "x", "max_num_results": 51}, "max_num_results"),
                        ({"query": "x", "ranking_options": {"ranker": "best"}}, "ranking_options.ranker"),
                        ({"query": "x", "ranking_options": {"score_threshold": 2}}, "ranking_options.score_threshold")]:
        response = client._client.post(f"{client.base_url}vector_stores/{store.id}/search", json=body)
        validate_error_envelope(response.json(), 400, param=param)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search("vs_missing", query="x")


def test_files_endpoints_status_filter_and_pages(any_client: openai.OpenAI) -> None:
    client = any_client
    store = client.vector_stores.create(name="files", extra_body=EMBED)
    good = [upload(client, f"g{i}.txt", f"good text {i}".encode()) for i in range(3)]
    bad = upload(client, "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    binary = upload(client, "blob.bin", b"\x00\x01\x02" * 100)
    for file_id in good + [bad, binary]:
        client.vector_stores.files.create(store.id, file_id=file_id,
                                          chunking_strategy={"type": "static", "static": {
                                              "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}})
    wait_for_store(client, store.id)
    failed = client.vector_stores.files.list(store.id, filter="failed")
    assert {f.id for f in failed.data} == {bad, binary}
    for f in failed.data:
        assert f.last_error is not None and f.last_error.code == "unsupported_file" and f.last_error.message
    completed = client.vector_stores.files.list(store.id, filter="completed", limit=2, order="asc")
    assert [f.id for f in completed.data] == good[:2] and completed.has_more
    assert completed.data[0].chunking_strategy.static.max_chunk_size_tokens == 100
    nxt = client.vector_stores.files.list(store.id, filter="completed", limit=2, order="asc", after=good[1])
    assert [f.id for f in nxt.data] == good[2:] and not nxt.has_more
    store_now = client.vector_stores.retrieve(store.id)
    assert store_now.file_counts.failed == 2 and store_now.file_counts.completed == 3
    assert client.vector_stores.search(store.id, query="good text").data  # the store keeps working

    assert client.vector_stores.files.delete(good[0], vector_store_id=store.id).deleted
    assert good[0] not in {h.file_id for h in client.vector_stores.search(store.id, query="good text 0").data}
    client.files.delete(good[1])  # deleting the file detaches it everywhere
    assert good[1] not in {f.id for f in client.vector_stores.files.list(store.id).data}
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(store.id, file_id="file-nope")
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.files.create(store.id, file_id=good[2], chunking_strategy={
            "type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}})
    validate_error_envelope(err.value.response.json(), 400, param="chunking_strategy.static.max_chunk_size_tokens")


def test_file_batches(any_client: openai.OpenAI) -> None:
    client = any_client
    store = client.vector_stores.create(name="batches", extra_body=EMBED)
    a, b, c = (upload(client, f"{n}.txt", f"batch doc {n}".encode()) for n in "abc")
    batch = client.vector_stores.file_batches.create(
        store.id, files=[{"file_id": a, "attributes": {"kind": "x"}}, {"file_id": b}],
        attributes={"kind": "default"})
    validate(raw(client, "GET", f"vector_stores/{store.id}/file_batches/{batch.id}"))
    assert batch.file_counts.total == 2
    wait_for_store(client, store.id)
    done = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert done.status == "completed" and done.file_counts.completed == 2
    files = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert {f.id: f.attributes for f in files.data} == {a: {"kind": "x"}, b: {"kind": "default"}}
    second = client.vector_stores.file_batches.create(store.id, file_ids=[c])
    cancelled = client.vector_stores.file_batches.cancel(second.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.file_batches.create(store.id, file_ids=[])
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_nope", vector_store_id=store.id)


def test_embedding_model_mismatch_refused(any_client: openai.OpenAI, upstream) -> None:
    client = any_client
    store = client.vector_stores.create(name="dims", extra_body=EMBED)
    client.vector_stores.files.create(store.id, file_id=upload(client, "one.txt", b"first document"))
    wait_for_store(client, store.id)
    got = raw(client, "GET", f"vector_stores/{store.id}")
    assert got["embedding_model"] == "up/scripted-embed" and got["embedding_dimension"] == 8
    upstream.script_embeddings({"object": "list", "model": "x", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                                "data": [{"object": "embedding", "index": 0, "embedding": [0.5] * 4}]})
    second = client.vector_stores.files.create(store.id, file_id=upload(client, "two.txt", b"second document"))
    failed = wait_for_file(client, store.id, second.id)
    assert failed.status == "failed" and "8-dimensional" in failed.last_error.message
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.create(name="x", extra_body={"embedding_model": "nope/nothing"})
    validate_error_envelope(err.value.response.json(), 400, param="embedding_model")


def test_upstream_embedding_failure_fails_file_only(any_client: openai.OpenAI, upstream) -> None:
    from tests.support.upstream import error

    client = any_client
    store = client.vector_stores.create(name="fail", extra_body=EMBED)
    upstream.script_embeddings(error(500, "embedding backend down"))
    first = client.vector_stores.files.create(store.id, file_id=upload(client, "a.txt", b"alpha text"))
    assert wait_for_file(client, store.id, first.id).status == "failed"
    second = client.vector_stores.files.create(store.id, file_id=upload(client, "b.txt", b"beta text"))
    assert wait_for_file(client, store.id, second.id).status == "completed"
    assert client.vector_stores.search(store.id, query="beta").data[0].file_id == second.id


def test_semantic_search_local_model(client: openai.OpenAI) -> None:
    """The embedded all-MiniLM-L6-v2 (the default embedding model): meaning, not words, finds the chunk."""
    texts = {"cats.txt": "Felines are independent pets that groom themselves and purr when content.",
             "cars.txt": "The engine needs an oil change every ten thousand kilometres.",
             "cake.txt": "Preheat the oven, then whisk eggs, sugar and flour into a smooth batter."}
    ids = {name: upload(client, name, text.encode()) for name, text in texts.items()}
    store = client.vector_stores.create(name="semantic", file_ids=list(ids.values()))
    got = raw(client, "GET", f"vector_stores/{store.id}")
    assert got["embedding_model"] == "local/all-minilm-l6-v2"
    assert wait_for_store(client, store.id, timeout=300).file_counts.completed == 3
    assert raw(client, "GET", f"vector_stores/{store.id}")["embedding_dimension"] == 384
    for query, expected in [("which animal makes a good companion?", "cats.txt"),
                            ("automobile maintenance", "cars.txt"), ("baking a dessert", "cake.txt")]:
        vector = client.vector_stores.search(store.id, query=query, extra_body={"search_mode": "vector"})
        assert vector.data[0].filename == expected, (query, vector.data)
        hybrid = client.vector_stores.search(store.id, query=query)
        assert hybrid.data[0].filename == expected
    keyword = client.vector_stores.search(store.id, query="automobile maintenance",
                                          extra_body={"search_mode": "keyword"})
    assert keyword.data == []  # no shared word: only the embeddings find it
