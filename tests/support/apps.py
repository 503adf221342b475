"""The lesson's app and an in-process client for the claim tests."""
from __future__ import annotations

import httpx

from autograder.solution import build_app


def client(app) -> httpx.AsyncClient:
    """Requests straight to the ASGI app, in-process, as the lesson does."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://claims")


def yield_app(engine):
    """The lesson's app (its step-4 solution, autograder/solution.py) on `engine`: a yield
    dependency lending a pooled connection to GET /items."""
    return build_app(engine)
