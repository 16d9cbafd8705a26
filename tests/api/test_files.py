"""/v1/files with the official SDK against the real server: upload (multipart, streamed), list, retrieve,
content, delete, expiry, the size limit (413) and bad input that leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import time

import httpx
import openai
import pytest

from tests.support.conformance import validate_error_envelope
from tests.support.retrieval import validate, validate_list
from tests.support.server import scripted_provider


def test_upload_retrieve_list_content_delete(client: openai.OpenAI, server) -> None:
    data = b"Respond stores uploaded files under its data dir.\n" * 50
    created = client.files.create(file=("notes.txt", data, "text/plain"), purpose="assistants")
    raw = client.files.with_raw_response.retrieve(created.id).http_response.json()
    validate(raw)
    assert raw == {"id": created.id, "object": "file", "bytes": len(data), "created_at": raw["created_at"],
                   "filename": "notes.txt", "purpose": "assistants", "status": "processed", "expires_at": None,
                   "status_details": None}
    assert abs(raw["created_at"] - time.time()) < 60
    assert client.files.content(created.id).content == data
    listed = client.files.with_raw_response.list().http_response.json()
    validate_list(listed)
    assert created.id in [f["id"] for f in listed["data"]]

    deleted = client.files.delete(created.id)
    assert deleted.deleted is True and deleted.id == created.id
    with pytest.raises(openai.NotFoundError) as err:
        client.files.retrieve(created.id)
    validate_error_envelope(err.value.response.json(), 404)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    assert not (server.config.data_path / "files" / created.id).exists()


def test_list_filters_and_pages(client: openai.OpenAI) -> None:
    made = [client.files.create(file=(f"f{i}.txt", f"file {i}".encode()), purpose=purpose).id
            for i, purpose in enumerate(["user_data", "user_data", "evals", "user_data"])]
    user_data = [f.id for f in client.files.list(purpose="user_data").data]
    assert [i for i in user_data if i in made] == [made[3], made[1], made[0]]  # newest first
    assert made[2] not in user_data
    page = client.files.with_raw_response.list(purpose="user_data", limit=2, order="asc",
                                               after=made[0]).http_response.json()
    assert [f["id"] for f in page["data"]][:2] == [made[1], made[3]]
    asc = [f.id for f in client.files.list(order="asc").data]
    assert asc.index(made[0]) < asc.index(made[3])


@pytest.mark.parametrize("purpose", ["assistants", "user_data", "batch", "vision", "evals"])
def test_purposes(client: openai.OpenAI, purpose: str) -> None:
    created = client.files.create(file=("x.jsonl", b'{"a": 1}\n'), purpose=purpose)
    assert client.files.retrieve(created.id).purpose == purpose


def test_expires_after(client: openai.OpenAI) -> None:
    created = client.files.create(file=("tmp.txt", b"temporary"), purpose="user_data",
                                  expires_after={"anchor": "created_at", "seconds": 3600})
    assert created.expires_at == created.created_at + 3600
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("tmp.txt", b"temporary"), purpose="user_data",
                            expires_after={"anchor": "created_at", "seconds": 5})
    validate_error_envelope(err.value.response.json(), 400, param="expires_after")


def test_bad_input_leaves_nothing(client: openai.OpenAI, server) -> None:
    before = {f.id for f in client.files.list().data}
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.txt", b"abc"), purpose="nonsense")  # type: ignore[arg-type]
    validate_error_envelope(err.value.response.json(), 400, param="purpose", code="invalid_value")
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("empty.txt", b""), purpose="assistants")
    validate_error_envelope(err.value.response.json(), 400, param="file")
    response = httpx.post(f"{server.base_url}/files", data={"purpose": "assistants"})
    validate_error_envelope(response.json(), 400)
    response = httpx.post(f"{server.base_url}/files", files={"purpose": (None, "assistants")})
    validate_error_envelope(response.json(), 400, param="file")
    assert {f.id for f in client.files.list().data} == before
    assert not list((server.config.data_path / "files" / ".tmp").iterdir())


def test_size_limit_413_then_server_keeps_serving(make_server, upstream) -> None:
    from respond.config import RetrievalConfig

    running = make_server([scripted_provider(upstream)], retrieval=RetrievalConfig(max_upload_bytes=100_000))
    client = running.client()
    with pytest.raises(openai.APIStatusError) as err:
        client.files.create(file=("big.bin", os.urandom(300_000)), purpose="assistants")
    assert err.value.status_code == 413
    validate_error_envelope(err.value.response.json(), 413, param="file", code="file_too_large")
    # chunked upload without content-length: cut off while streaming, same answer
    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n"
        for _ in range(40):
            yield b"x" * 10_000
        yield b"\r\n--b--\r\n"
    response = httpx.post(f"{running.base_url}/files", content=body(),
                          headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413
    assert client.files.list().data == []
    blobs = running.config.data_path / "files"
    assert [p.name for p in blobs.iterdir()] == [".tmp"] and not list((blobs / ".tmp").iterdir())
    ok = client.files.create(file=("small.bin", b"y" * 99_000), purpose="assistants")
    assert client.files.retrieve(ok.id).bytes == 99_000


def test_large_upload_round_trips(client: openai.OpenAI) -> None:
    data = os.urandom(6 * 1024 * 1024)
    created = client.files.create(file=("blob.bin", data, "application/octet-stream"), purpose="batch")
    assert created.bytes == len(data)
    assert hashlib.sha256(client.files.content(created.id).content).digest() == hashlib.sha256(data).digest()


def test_input_file_by_id_reaches_the_model_as_text(client: openai.OpenAI, upstream) -> None:
    from tests.support.retrieval import make_docx, make_pdf
    from tests.support.upstream import reply

    pdf = client.files.create(file=("report.pdf", make_pdf(["Quarterly revenue grew by 42 percent."])),
                              purpose="user_data")
    docx = client.files.create(file=("memo.docx", make_docx(["The launch moves to March."])), purpose="user_data")
    upstream.script(reply("Revenue grew 42%."))
    response = client.responses.create(model="up/scripted", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Summarize the report."},
        {"type": "input_file", "file_id": pdf.id}]}])
    assert response.output_text == "Revenue grew 42%."
    content = upstream.last_chat["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Summarize the report."}
    assert "Quarterly revenue grew by 42 percent." in content[1]["text"] and "report.pdf" in content[1]["text"]
    items = client.responses.input_items.list(response.id).data
    assert items[0].content[1].file_id == pdf.id  # stored as sent: the reference, not the text

    upstream.script(reply("ok"))
    client.responses.create(model="up/scripted", input=[
        {"type": "function_call", "call_id": "call_1", "name": "read_memo", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1",
         "output": [{"type": "input_file", "file_id": docx.id}]}])
    tool_message = upstream.last_chat["messages"][-1]
    assert tool_message["role"] == "tool" and "The launch moves to March." in json.dumps(tool_message["content"])

    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="up/scripted", input=[{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-missing"}]}])
    validate_error_envelope(err.value.response.json(), 400, code="file_not_found")
