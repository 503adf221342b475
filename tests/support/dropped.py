"""A server that drops an idle pooled connection, for the claims about pool_recycle and
pool_pre_ping: the pool lends one connection, the driver's connection under it is closed as a
server would close it, and the next checkout's query works or fails."""
from __future__ import annotations

import asyncio

from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine


async def serves_after_the_server_dropped_it(db_url: str, idle: float = 0.0, **options) -> bool:
    """Whether a query works on the next checkout after the pool's only connection sat idle for
    `idle` seconds and the server then dropped it (`options`: create_async_engine's)."""
    engine = create_async_engine(db_url, **{"pool_size": 1, "max_overflow": 0, **options})
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
    await asyncio.sleep(idle)
    await driver.close()  # the server dropped the idle pooled connection
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar() == 1
    except exc.DBAPIError:
        return False
    finally:
        await engine.dispose()
