"""Model ids -> providers.

Client-visible model ids are `provider/model` (`openai/gpt-4o`, `local/smollm2-135m`). A bare id that only one
provider serves (`gpt-4o`) resolves too, and so does an id whose own name contains a slash when it is unique
(`vllm/meta-llama/Llama-3.1-8B` or just `meta-llama/Llama-3.1-8B`).

The router keeps a snapshot of every provider's models, taken by `await refresh()` (call it at startup;
`aresolve`, `list_models` and `get_model` take it lazily). With a provider whose model list is known, an id
it does not list is rejected with `model_not_found`; a provider whose list is empty (discovery failed, the
upstream is down) passes any `provider/name` through, so the upstream decides.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from respond.errors import InvalidRequest, NotFound, shorten
from respond.inference.base import ModelInfo, Provider

log = logging.getLogger(__name__)


class Router:
    def __init__(self, providers: list[Provider], default_model: str | None = None) -> None:
        ids = [p.id for p in providers]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate provider ids: {sorted(dupes)}")
        self.providers: dict[str, Provider] = {p.id: p for p in providers}
        self.default_model = default_model
        self._models: dict[str, list[ModelInfo]] | None = None
        self._refresh_lock = asyncio.Lock()

    # -- snapshot ---------------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Ask every provider for its models (concurrently) and keep the snapshot."""
        async with self._refresh_lock:
            results = await asyncio.gather(*(p.list_models() for p in self.providers.values()),
                                           return_exceptions=True)
            snapshot: dict[str, list[ModelInfo]] = {}
            for provider, result in zip(self.providers.values(), results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("provider '%s': listing models failed: %s", provider.id, result)
                    result = []
                snapshot[provider.id] = list(result)
            self._models = snapshot

    async def _ensure(self) -> dict[str, list[ModelInfo]]:
        if self._models is None or any(not models for models in self._models.values()):
            # Empty lists are retried (providers rate-limit their own rediscovery).
            await self.refresh()
        assert self._models is not None
        return self._models

    def _snapshot(self) -> dict[str, list[ModelInfo]]:
        return self._models or {}

    # -- resolution -------------------------------------------------------------------------------------

    def resolve(self, model_id: str | None) -> tuple[Provider, str]:
        """`(provider, upstream model name)` for a client model id, from the current snapshot.

        Raises `InvalidRequest(param="model", code="model_not_found")` (HTTP 400) for an unknown id, and
        `missing_required_parameter` when there is no id and no default model.
        """
        if not model_id and not self.default_model:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model",
                                 code="missing_required_parameter")
        found = self._find(model_id or self.default_model)
        if found is None:
            raise self._unknown(model_id or self.default_model or "")
        provider, name, _ = found
        return provider, name

    async def aresolve(self, model_id: str | None) -> tuple[Provider, str]:
        """`resolve`, taking (or retaking) the models snapshot first when needed."""
        target = model_id or self.default_model
        if self._models is None or self._find(target) is None:
            await self._ensure()
        return self.resolve(model_id)

    def _find(self, model_id: str | None) -> tuple[Provider, str, ModelInfo | None] | None:
        if not model_id:
            return None
        snapshot = self._snapshot()
        prefix, sep, name = model_id.partition("/")
        if sep and name and prefix in self.providers:
            provider = self.providers[prefix]
            models = snapshot.get(prefix, [])
            info = next((m for m in models if m.id == name), None)
            if info is not None or not models:
                return provider, name, info
        # A bare id (or an id whose first segment is not a provider): unique across providers.
        matches = [(self.providers[pid], m) for pid, models in snapshot.items() for m in models if m.id == model_id]
        if len(matches) == 1:
            provider, info = matches[0]
            return provider, info.id, info
        return None

    def _unknown(self, model_id: str) -> InvalidRequest:
        return InvalidRequest(
            f"The model '{shorten(model_id)}' does not exist or you do not have access to it. "
            f"Available models: {', '.join(self.model_ids()) or '(none)'}.",
            param="model", code="model_not_found")

    def model_ids(self) -> list[str]:
        return [f"{pid}/{m.id}" for pid, models in self._snapshot().items() for m in models]

    def is_embedding_model(self, model_id: str) -> bool:
        found = self._find(model_id)
        return bool(found and found[2] is not None and found[2].kind == "embedding")

    # -- OpenAI Model objects ---------------------------------------------------------------------------

    async def list_models(self) -> list[dict[str, Any]]:
        """OpenAI `Model` dicts, ids `provider/model`, plus the extension field `kind` (llm | embedding)."""
        snapshot = await self._ensure()
        return [_model_dict(pid, m) for pid, models in snapshot.items() for m in models]

    async def get_model(self, model_id: str) -> dict[str, Any]:
        """One OpenAI `Model` dict; `NotFound` (404) when no provider lists it."""
        await self._ensure()
        found = self._find(model_id)
        if found is None or found[2] is None:
            raise NotFound(f"The model '{shorten(model_id)}' does not exist or you do not have access to it.",
                           param="model", code="model_not_found")
        provider, _, info = found
        return _model_dict(provider.id, info)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception:  # noqa: BLE001 - closing must go on for the other providers
                log.exception("provider '%s': close failed", provider.id)


def _model_dict(provider_id: str, info: ModelInfo) -> dict[str, Any]:
    return {"id": f"{provider_id}/{info.id}", "object": "model", "created": info.created,
            "owned_by": info.owned_by, "kind": info.kind}
