"""HTTP and WebSocket only: parse, call a service, serialize, map errors to the OpenAI envelope."""
