"""Small FastAPI apps and an in-process client for the claim tests."""
from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import text


def client(app) -> httpx.AsyncClient:
    """Requests straight to the ASGI app, in-process, as the lesson does."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://claims")


def yield_app(engine) -> FastAPI:
    """The lesson's app: a yield dependency lending a pooled connection to GET /items."""
    app = FastAPI()

    async def get_connection():
        async with engine.connect() as conn:
            yield conn

    @app.get("/items")
    async def items(conn=Depends(get_connection)):
        return (await conn.execute(text("SELECT * FROM items"))).mappings().all()

    return app
