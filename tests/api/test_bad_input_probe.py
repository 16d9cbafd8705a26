"""Requests a bad-input probe of the whole API found answered with a 500, a dropped connection or a response
reported done but never stored; each now gets a clear OpenAI error envelope (on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.conformance import validate_error_envelope

MODEL = "up/scripted"
EMBED = {"embedding_model": "up/scripted-embed"}


def expect400(r: httpx.Response, **checks: Any) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    validate_error_envelope(r.json(), 400, **checks)


def test_item_ids_must_be_strings(any_server: Any, upstream) -> None:
    """An object id used to pass validation, the response answered `completed`, and its save failed (the
    conversation got nothing, a background run stayed in_progress)."""
    base = any_server.base_url
    conv = httpx.post(f"{base}/conversations", json={}).json()["id"]
    calls = len(upstream.chat_bodies)
    for bad in ({"a": 1}, [1], 5, True, "", "x" * 600, "msg_\u0000"):
        item = {"id": bad, "type": "message", "role": "user", "content": "x"}
        r = httpx.post(f"{base}/responses", json={"model": MODEL, "conversation": conv, "input": [item]})
        expect400(r, param="input[0].id")
        r = httpx.post(f"{base}/conversations", json={"items": [item]})
        expect400(r, param="items[0].id")
        r = httpx.post(f"{base}/conversations/{conv}/items", json={"items": [item]})
        expect400(r, param="items[0].id")
    assert len(upstream.chat_bodies) == calls  # nothing reached the model
    assert httpx.get(f"{base}/conversations/{conv}/items").json()["data"] == []


def test_vector_store_filters_with_odd_keys_or_too_many_terms(any_server: Any) -> None:
    base = any_server.base_url
    store = httpx.post(f"{base}/vector_stores", json={"name": "probe", **EMBED}).json()["id"]
    try:
        for key in ("a\\", "a\u0000b", 'a"b', "k" * 65):
            r = httpx.post(f"{base}/vector_stores/{store}/search",
                           json={"query": "paris", "filters": {"type": "eq", "key": key, "value": "x"}})
            expect400(r, param="filters.key")
        r = httpx.post(f"{base}/vector_stores/{store}/search",
                       json={"query": "paris", "filters": {"type": "eq", "key": "k", "value": "x\u0000"}})
        expect400(r, param="filters.value")
        wide = {"type": "or", "filters": [{"type": "eq", "key": "k", "value": i} for i in range(5000)]}
        r = httpx.post(f"{base}/vector_stores/{store}/search", json={"query": "paris", "filters": wide})
        expect400(r, param="filters")
        ok = {"type": "and", "filters": [{"type": "eq", "key": "k", "value": i} for i in range(100)]}
        assert httpx.post(f"{base}/vector_stores/{store}/search", json={"query": "paris", "filters": ok}
                          ).status_code == 200
    finally:
        httpx.delete(f"{base}/vector_stores/{store}")


def test_starting_after_beyond_any_sequence_number_is_a_400(any_server: Any) -> None:
    r = httpx.get(f"{any_server.base_url}/responses/resp_x", params={"stream": "true",
                                                                     "starting_after": 2**31})
    expect400(r)


def _multipart(filename: bytes, content_type: bytes, data: bytes = b"hello") -> tuple[bytes, str]:
    boundary = "probeboundary"
    body = (b"--probeboundary\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
            b"--probeboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename +
            b"\"\r\nContent-Type: " + content_type + b"\r\n\r\n" + data + b"\r\n--probeboundary--\r\n")
    return body, f"multipart/form-data; boundary={boundary}"


def test_upload_with_a_control_character_content_type_can_still_be_downloaded(any_server: Any) -> None:
    """The part's Content-Type used to be stored as sent and served back as a header: the download then
    dropped the connection."""
    body, ctype = _multipart(b"odd.txt", b"\xff/\x00\x01")
    r = httpx.post(f"{any_server.base_url}/files", content=body, headers={"content-type": ctype})
    assert r.status_code == 200, r.text
    file_id = r.json()["id"]
    got = httpx.get(f"{any_server.base_url}/files/{file_id}/content")
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, b"hello",
                                                                           "application/octet-stream")
    httpx.delete(f"{any_server.base_url}/files/{file_id}")


def test_a_huge_filename_is_a_400(any_server: Any) -> None:
    body, ctype = _multipart(b"a" * 8000, b"text/plain")
    r = httpx.post(f"{any_server.base_url}/files", content=body, headers={"content-type": ctype})
    expect400(r, code="invalid_multipart")


@pytest.mark.parametrize("path", ["/files/file_%00", "/files/file_%00/content", "/responses/resp_%00",
                                  "/responses/resp_%00/input_items", "/vector_stores/vs_%00",
                                  "/responses?after=%00", "/files?after=%00", "/vector_stores?after=%00"])
def test_nul_in_ids_is_a_client_error(any_server: Any, path: str) -> None:
    """PostgreSQL text cannot hold NUL: a NUL in an id or cursor used to be a 500 there. (The vector store
    list ignores a cursor it does not know, on both backends: a 200.)"""
    r = httpx.get(f"{any_server.base_url}{path}")
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        validate_error_envelope(r.json(), r.status_code)
    else:
        assert path.startswith("/vector_stores?") and r.json()["data"] == []
