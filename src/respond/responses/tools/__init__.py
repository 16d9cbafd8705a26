"""Tools: one module per tool kind behind one interface (base.py), a registry (registry.py) and the
per-request ToolSet (toolset.py). See docs/tools.md.

Every module of this package is imported here so the tool kinds register themselves: adding a tool kind
is adding a module (and its tests and docs), nothing elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil

from respond.responses.tools.base import (
    InvalidArguments,
    Tool,
    ToolCall,
    ToolEnv,
    ToolResult,
    ToolRun,
)
from respond.responses.tools.registry import ITEM_KINDS, TOOL_KINDS, ItemKind, item_kind, tool_kind
from respond.responses.tools.toolset import ToolSet

_FRAMEWORK = {"base", "registry", "toolset"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _FRAMEWORK and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ITEM_KINDS", "TOOL_KINDS", "InvalidArguments", "ItemKind", "Tool", "ToolCall", "ToolEnv", "ToolResult",
           "ToolRun", "ToolSet", "item_kind", "tool_kind"]
