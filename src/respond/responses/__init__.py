"""The agent: turning Responses API requests into model turns, stream events and stored responses."""
