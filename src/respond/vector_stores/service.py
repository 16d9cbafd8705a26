"""`VectorStoreService`: vector stores, their files and file batches, and search. Every method takes the
`owner` explicitly (from the HTTP layer) and passes it to the repository.

Objects are shaped exactly as the openai package's `VectorStore`, `VectorStoreFile`, `VectorStoreFileBatch`,
`VectorStoreSearchResponse` (page) and `FileContentResponse` (page).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from respond import ids
from respond.errors import InvalidRequest, not_found
from respond.files.chunking import resolve_strategy
from respond.files.service import FileService, check_page
from respond.storage.vector_filters import validate_filters
from respond.storage.vector_stores_repo import STOPWORDS, VectorStoreRepo
from respond.vector_stores.embedder import Embedder
from respond.vector_stores.ingest import IngestWorker

RRF_K = 60
RANKERS = ("auto", "default-2024-11-15", "none")
SEARCH_MODES = ("hybrid", "vector", "keyword")


def _check_metadata(value: Any, param: str = "metadata") -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16 or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512 for k, v in value.items()):
        raise InvalidRequest(f"Invalid '{param}': expected at most 16 string keys (<= 64 chars) with string values "
                             "(<= 512 chars).", param=param, code="invalid_value")
    return value


def _check_attributes(value: Any, param: str = "attributes") -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16 or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str | int | float | bool)
            and (not isinstance(v, str) or len(v) <= 512) for k, v in value.items()):
        raise InvalidRequest(f"Invalid '{param}': expected at most 16 keys (<= 64 chars) with string (<= 512 "
                             "chars), number or boolean values.", param=param, code="invalid_value")
    return value


def _store_expiry(value: Any) -> dict[str, Any] | None:
    """A vector store's `{"anchor": "last_active_at", "days": N}` (1-365), checked."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("anchor") != "last_active_at":
        raise InvalidRequest("Invalid 'expires_after.anchor': expected 'last_active_at'.",
                             param="expires_after.anchor", code="invalid_value")
    days = value.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
        raise InvalidRequest("Invalid 'expires_after.days': expected an integer between 1 and 365.",
                             param="expires_after.days", code="invalid_value")
    return {"anchor": "last_active_at", "days": days}


def rewrite_query(query: str) -> str:
    """A keyword rewrite (no model call): lower case, question words and stop words dropped."""
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS]
    return " ".join(words) or query


def parse_ranking(options: Any, param: str = "ranking_options") -> tuple[float, float, float]:
    """`(score_threshold, embedding_weight, text_weight)` of `ranking_options`, checked."""
    options = options or {}
    if not isinstance(options, dict):
        raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param, code="invalid_type")
    if options.get("ranker", "auto") not in RANKERS:
        raise InvalidRequest(f"Invalid '{param}.ranker': expected one of {', '.join(RANKERS)}.",
                             param=f"{param}.ranker", code="invalid_value")
    threshold = options.get("score_threshold")
    threshold = 0.0 if threshold is None else threshold
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 <= threshold <= 1:
        raise InvalidRequest(f"Invalid '{param}.score_threshold': expected a number between 0 and 1.",
                             param=f"{param}.score_threshold", code="invalid_value")
    weights = options.get("hybrid_search") or {}
    if not isinstance(weights, dict):
        raise InvalidRequest(f"Invalid '{param}.hybrid_search': expected an object.", param=f"{param}.hybrid_search",
                             code="invalid_type")
    try:
        embedding_weight = float(weights.get("embedding_weight", 1.0))
        text_weight = float(weights.get("text_weight", 1.0))
    except (TypeError, ValueError):
        embedding_weight = text_weight = -1.0
    if embedding_weight < 0 or text_weight < 0 or embedding_weight + text_weight == 0:
        raise InvalidRequest(f"Invalid '{param}.hybrid_search': weights must be non-negative numbers, not both 0.",
                             param=f"{param}.hybrid_search", code="invalid_value")
    return float(threshold), embedding_weight, text_weight


class VectorStoreService:
    def __init__(self, repo: VectorStoreRepo, files: FileService, embedder: Embedder, worker: IngestWorker,
                 default_embedding_model: str) -> None:
        self.repo = repo
        self.files = files
        self.embedder = embedder
        self.worker = worker
        self.default_embedding_model = default_embedding_model
        files.on_delete.append(self._forget_file)

    # -- objects -----------------------------------------------------------------------------------------------

    async def _store_objects(self, owner: str, rows: list[Any]) -> list[dict[str, Any]]:
        counts = await self.repo.counts(owner, [r.id for r in rows])
        now = int(time.time())
        out = []
        for r in rows:
            file_counts, usage = counts[r.id]
            status = ("expired" if r.expires_at is not None and r.expires_at <= now
                      else "in_progress" if file_counts["in_progress"] else "completed")
            out.append({"id": r.id, "object": "vector_store", "created_at": r.created_at, "name": r.name or "",
                        "usage_bytes": usage, "file_counts": file_counts, "status": status,
                        "expires_after": r.expires_after, "expires_at": r.expires_at,
                        "last_active_at": r.last_active_at, "metadata": r.metadata or {},
                        "embedding_model": r.embedding_model, "embedding_dimension": r.embedding_dimension})
        return out

    @staticmethod
    def _file_object(r: Any) -> dict[str, Any]:
        return {"id": r.file_id, "object": "vector_store.file", "usage_bytes": r.usage_bytes,
                "created_at": r.created_at, "vector_store_id": r.vector_store_id, "status": r.status,
                "last_error": r.last_error, "chunking_strategy": r.chunking_strategy, "attributes": r.attributes}

    async def _batch_object(self, owner: str, batch: Any) -> dict[str, Any]:
        counts, _ = (await self.repo.counts(owner, [batch.vector_store_id], batch_id=batch.id))[batch.vector_store_id]
        status = ("cancelled" if batch.cancelled else "in_progress" if counts["in_progress"]
                  else "failed" if counts["total"] and counts["failed"] == counts["total"] else "completed")
        return {"id": batch.id, "object": "vector_store.files_batch", "created_at": batch.created_at,
                "vector_store_id": batch.vector_store_id, "status": status, "file_counts": counts}

    @staticmethod
    def _list(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    async def require_store(self, owner: str, store_id: str, param: str) -> None:
        """404 (the same as for an unknown id) unless the store exists and is the owner's."""
        if await self.repo.get_store(owner, store_id) is None:
            raise not_found("Vector store", store_id, param=param)

    async def _store_row(self, owner: str, store_id: str) -> Any:
        row = await self.repo.get_store(owner, store_id)
        if row is None:
            raise not_found("Vector store", store_id, param="vector_store_id")
        return row

    # -- stores ------------------------------------------------------------------------------------------------

    async def create(self, owner: str, body: dict[str, Any], test_id: str | None = None) -> dict[str, Any]:
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidRequest("Invalid 'name': expected a string.", param="name", code="invalid_type")
        metadata = _check_metadata(body.get("metadata"))
        expires_after = _store_expiry(body.get("expires_after"))
        strategy = resolve_strategy(body.get("chunking_strategy"))
        model = body.get("embedding_model") or self.default_embedding_model
        if not isinstance(model, str):
            raise InvalidRequest("Invalid 'embedding_model': expected a string.", param="embedding_model")
        await self.embedder.check(model)
        file_ids = body.get("file_ids") or []
        if not isinstance(file_ids, list) or not all(isinstance(f, str) for f in file_ids):
            raise InvalidRequest("Invalid 'file_ids': expected an array of strings.", param="file_ids",
                                 code="invalid_type")
        await self._check_files(owner, file_ids, "file_ids")
        now = int(time.time())
        store_id = ids.new_id("vector_store")
        await self.repo.insert_store(owner, {
            "id": store_id, "created_at": now, "last_active_at": now, "name": name, "metadata": metadata,
            "expires_after": expires_after, "embedding_model": model,
            "expires_at": now + expires_after["days"] * 86400 if expires_after else None})
        if file_ids:
            await self.repo.attach(owner, store_id, [
                {"file_id": f, "attributes": None, "chunking_strategy": strategy} for f in dict.fromkeys(file_ids)],
                batch_id=None, test_id=test_id)
            self.worker.wake()
        return await self.get(owner, store_id)

    async def get(self, owner: str, store_id: str) -> dict[str, Any]:
        return (await self._store_objects(owner, [await self._store_row(owner, store_id)]))[0]

    async def list(self, owner: str, *, after: str | None = None, before: str | None = None, limit: int = 20,
                   order: str = "desc") -> dict[str, Any]:
        check_page(limit, order, 100)
        rows, has_more = await self.repo.list_stores(owner, after=after, before=before, limit=limit, order=order)
        return self._list(await self._store_objects(owner, rows), has_more)

    async def update(self, owner: str, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        values: dict[str, Any] = {}
        if "name" in body:
            if body["name"] is not None and not isinstance(body["name"], str):
                raise InvalidRequest("Invalid 'name': expected a string.", param="name", code="invalid_type")
            values["name"] = body["name"]
        if "metadata" in body:
            values["metadata"] = _check_metadata(body["metadata"])
        if "expires_after" in body:
            expires_after = _store_expiry(body["expires_after"])
            values["expires_after"] = expires_after
            values["expires_at"] = int(time.time()) + expires_after["days"] * 86400 if expires_after else None
        if values:
            values["last_active_at"] = int(time.time())
            await self.repo.update_store(owner, store_id, values)
        return await self.get(owner, store_id)

    async def delete(self, owner: str, store_id: str) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        await self.repo.delete_store(owner, store_id)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    # -- files -------------------------------------------------------------------------------------------------

    async def _check_files(self, owner: str, file_ids: list[str], param: str) -> None:
        found = await self.files.store.get_many(owner, file_ids)
        for i, file_id in enumerate(file_ids):
            if file_id not in found:
                raise not_found("File", file_id, param=f"{param}[{i}]" if param.endswith("ids") else param)

    async def attach_file(self, owner: str, store_id: str, body: dict[str, Any],
                          test_id: str | None = None) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        file_id = body.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequest("Missing required parameter: 'file_id'.", param="file_id",
                                 code="missing_required_parameter")
        attributes = _check_attributes(body.get("attributes"))
        strategy = resolve_strategy(body.get("chunking_strategy"))
        await self._check_files(owner, [file_id], "file_id")
        await self.repo.attach(owner, store_id, [{"file_id": file_id, "attributes": attributes,
                                                  "chunking_strategy": strategy}], batch_id=None, test_id=test_id)
        self.worker.wake()
        return await self.get_file(owner, store_id, file_id)

    async def _file_row(self, owner: str, store_id: str, file_id: str) -> Any:
        row = await self.repo.get_file(owner, store_id, file_id)
        if row is None:
            raise not_found("Vector store file", file_id, param="file_id")
        return row

    async def get_file(self, owner: str, store_id: str, file_id: str) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        return self._file_object(await self._file_row(owner, store_id, file_id))

    async def list_files(self, owner: str, store_id: str, *, status: str | None = None, batch_id: str | None = None,
                         after: str | None = None, before: str | None = None, limit: int = 20,
                         order: str = "desc") -> dict[str, Any]:
        check_page(limit, order, 100)
        if status is not None and status not in ("in_progress", "completed", "failed", "cancelled"):
            raise InvalidRequest("Invalid 'filter': expected in_progress, completed, failed or cancelled.",
                                 param="filter", code="invalid_value")
        await self._store_row(owner, store_id)
        rows, has_more = await self.repo.list_files(owner, store_id, status=status, batch_id=batch_id, after=after,
                                                    before=before, limit=limit, order=order)
        return self._list([self._file_object(r) for r in rows], has_more)

    async def update_file(self, owner: str, store_id: str, file_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        await self._file_row(owner, store_id, file_id)
        if "attributes" not in body:
            raise InvalidRequest("Missing required parameter: 'attributes'.", param="attributes",
                                 code="missing_required_parameter")
        await self.repo.update_attributes(owner, store_id, file_id, _check_attributes(body["attributes"]))
        return await self.get_file(owner, store_id, file_id)

    async def delete_file(self, owner: str, store_id: str, file_id: str) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        if not await self.repo.detach(owner, store_id, file_id):
            raise not_found("Vector store file", file_id, param="file_id")
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def file_content(self, owner: str, store_id: str, file_id: str) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        await self._file_row(owner, store_id, file_id)
        texts = await self.repo.chunk_texts(owner, store_id, file_id)
        return {"object": "vector_store.file_content.page", "data": [{"type": "text", "text": t} for t in texts],
                "has_more": False, "next_page": None}

    async def _forget_file(self, owner: str, file_id: str) -> None:
        for store_id in await self.repo.stores_of_file(owner, file_id):
            await self.repo.detach(owner, store_id, file_id)

    # -- batches -----------------------------------------------------------------------------------------------

    async def create_batch(self, owner: str, store_id: str, body: dict[str, Any],
                           test_id: str | None = None) -> dict[str, Any]:
        await self._store_row(owner, store_id)
        default_attributes = _check_attributes(body.get("attributes"))
        default_strategy = resolve_strategy(body.get("chunking_strategy"))
        entries: list[dict[str, Any]] = []
        if body.get("files") is not None and body.get("file_ids") is not None:
            raise InvalidRequest("Give either 'file_ids' or 'files', not both.", param="files", code="invalid_value")
        if body.get("files") is not None:
            if not isinstance(body["files"], list) or not body["files"]:
                raise InvalidRequest("Invalid 'files': expected a non-empty array.", param="files", code="invalid_value")
            for i, f in enumerate(body["files"]):
                if not isinstance(f, dict) or not isinstance(f.get("file_id"), str):
                    raise InvalidRequest(f"Invalid 'files[{i}]': expected an object with 'file_id'.",
                                         param=f"files[{i}]", code="invalid_value")
                entries.append({
                    "file_id": f["file_id"],
                    "attributes": _check_attributes(f.get("attributes"), f"files[{i}].attributes")
                    if "attributes" in f else default_attributes,
                    "chunking_strategy": resolve_strategy(f.get("chunking_strategy"), f"files[{i}].chunking_strategy")
                    if f.get("chunking_strategy") else default_strategy})
        else:
            file_ids = body.get("file_ids")
            if not isinstance(file_ids, list) or not file_ids or not all(isinstance(f, str) for f in file_ids):
                raise InvalidRequest("Missing required parameter: 'file_ids' (a non-empty array of file ids).",
                                     param="file_ids", code="missing_required_parameter")
            entries = [{"file_id": f, "attributes": default_attributes, "chunking_strategy": default_strategy}
                       for f in dict.fromkeys(file_ids)]
        await self._check_files(owner, [e["file_id"] for e in entries], "files" if body.get("files") else "file_ids")
        batch_id = ids.new_id("vector_store_file_batch")
        await self.repo.insert_batch(owner, {"id": batch_id, "vector_store_id": store_id,
                                             "created_at": int(time.time()), "cancelled": 0})
        await self.repo.attach(owner, store_id, entries, batch_id=batch_id, test_id=test_id)
        self.worker.wake()
        return await self.get_batch(owner, store_id, batch_id)

    async def _batch_row(self, owner: str, store_id: str, batch_id: str) -> Any:
        await self._store_row(owner, store_id)
        row = await self.repo.get_batch(owner, store_id, batch_id)
        if row is None:
            raise not_found("Vector store file batch", batch_id, param="batch_id")
        return row

    async def get_batch(self, owner: str, store_id: str, batch_id: str) -> dict[str, Any]:
        return await self._batch_object(owner, await self._batch_row(owner, store_id, batch_id))

    async def cancel_batch(self, owner: str, store_id: str, batch_id: str) -> dict[str, Any]:
        await self._batch_row(owner, store_id, batch_id)
        await self.repo.cancel_batch(owner, store_id, batch_id)
        return await self.get_batch(owner, store_id, batch_id)

    async def list_batch_files(self, owner: str, store_id: str, batch_id: str, **page: Any) -> dict[str, Any]:
        await self._batch_row(owner, store_id, batch_id)
        return await self.list_files(owner, store_id, batch_id=batch_id, **page)

    # -- search ------------------------------------------------------------------------------------------------

    async def search(self, owner: str, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
        store = await self._store_row(owner, store_id)
        query = body.get("query")
        queries = [query] if isinstance(query, str) else query
        if not isinstance(queries, list) or not queries or not all(isinstance(q, str) and q.strip() for q in queries):
            raise InvalidRequest("Invalid 'query': expected a non-empty string or array of strings.", param="query",
                                 code="invalid_value")
        k = body.get("max_num_results", 10)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50:
            raise InvalidRequest("Invalid 'max_num_results': expected an integer between 1 and 50.",
                                 param="max_num_results", code="invalid_value")
        filters = validate_filters(body.get("filters"))
        threshold, embedding_weight, text_weight = parse_ranking(body.get("ranking_options"))
        mode = body.get("search_mode", "hybrid")  # extension: force one signal
        if mode not in SEARCH_MODES:
            raise InvalidRequest(f"Invalid 'search_mode': expected one of {', '.join(SEARCH_MODES)}.",
                                 param="search_mode", code="invalid_value")
        if mode == "keyword":
            embedding_weight = 0.0
        elif mode == "vector":
            text_weight = 0.0
        if body.get("rewrite_query"):
            queries = [rewrite_query(q) for q in queries]
        hits = await self.search_rows(owner, store, queries, filters, k, embedding_weight, text_weight)
        hits = await self._with_filenames(owner, [h for h in hits if h["score"] >= threshold])
        data = [{"file_id": h["file_id"], "filename": h["filename"], "score": h["score"],
                 "attributes": h["attributes"], "content": [{"type": "text", "text": h["text"]}]} for h in hits]
        return {"object": "vector_store.search_results.page", "search_query": queries, "data": data,
                "has_more": False, "next_page": None}

    async def _with_filenames(self, owner: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = await self.files.store.get_many(owner, list({h["file_id"] for h in hits}))
        return [{**h, "filename": names[h["file_id"]].filename if h["file_id"] in names else ""} for h in hits]

    async def search_stores(self, owner: str, store_ids: list[str], queries: list[str], filters: dict | None,
                            k: int, ranking_options: dict | None) -> list[dict[str, Any]]:
        """The file_search tool's search: every query over every store (stores in parallel), the best `k`
        hits overall, each with `file_id`, `filename`, `score`, `attributes`, `text`."""
        threshold, embedding_weight, text_weight = parse_ranking(ranking_options)
        stores = [await self._store_row(owner, store_id) for store_id in store_ids]
        results = await asyncio.gather(*(self.search_rows(owner, store, queries, filters, k, embedding_weight,
                                                          text_weight) for store in stores))
        hits = sorted((h for rows in results for h in rows if h["score"] >= threshold), key=lambda h: -h["score"])
        return await self._with_filenames(owner, hits[:k])

    async def search_rows(self, owner: str, store: Any, queries: list[str], filters: dict | None, k: int,
                          embedding_weight: float, text_weight: float) -> list[dict[str, Any]]:
        """Hits of every query fused: one signal alone keeps its own scores; both are fused by reciprocal rank
        (weighted), normalised so a chunk ranked first by every signal and query scores 1."""
        candidates = k if (embedding_weight == 0 or text_weight == 0) and len(queries) == 1 else max(k * 2, 20)
        lists: list[tuple[float, list[dict[str, Any]]]] = []
        vector_rows: list[list[dict[str, Any]]] = []
        if embedding_weight > 0:
            if store.embedding_dimension is None:  # nothing indexed yet
                vector_rows = [[] for _ in queries]
            else:
                vectors = await self.embedder.embed(store.embedding_model, queries)
                if any(len(v) != store.embedding_dimension for v in vectors):
                    raise InvalidRequest(f"The vector store was built with '{store.embedding_model}' "
                                         f"({store.embedding_dimension} dimensions); the query embedding does not match.",
                                         code="embedding_dimension_mismatch")
                vector_rows = list(await asyncio.gather(*(
                    self.repo.vector_search(owner, store.id, v, filters, candidates) for v in vectors)))
            lists += [(embedding_weight, rows) for rows in vector_rows]
        if text_weight > 0:
            keyword_rows = await asyncio.gather(*(
                self.repo.keyword_search(owner, store.id, q, filters, candidates) for q in queries))
            lists += [(text_weight, rows) for rows in keyword_rows]
        if len(lists) == 1:
            return lists[0][1][:k]
        fused: dict[int, dict[str, Any]] = {}
        for weight, rows in lists:
            for rank, row in enumerate(rows):
                hit = fused.setdefault(row["seq"], {**row, "score": 0.0})
                hit["score"] += weight / (RRF_K + rank + 1)
        best = sum(w for w, _ in lists) / (RRF_K + 1)
        ranked = sorted(fused.values(), key=lambda h: -h["score"])[:k]
        for hit in ranked:
            hit["score"] = hit["score"] / best
        return ranked
