"""The web console: static files under ``/ui`` (ES modules, no build step) talking to the /v1 API."""
