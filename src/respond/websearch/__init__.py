"""Web search: providers (SearXNG, Tavily, Brave) behind one interface, every call through the Recorder.

`providers.build_search_provider(config.web_search, recorder)` gives the configured `SearchProvider` (or
None: web search is off). The `web_search` tool (responses/tools/web_search.py) renders its results for
the model (`render.py`) and maps the model's `[n]` citations to `url_citation` annotations
(`citations.py`).
"""
