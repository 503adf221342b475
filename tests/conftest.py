import pytest


@pytest.fixture
def anyio_backend():
    """Async tests run on asyncio, like a Jupyter kernel (anyio's pytest plugin)."""
    return "asyncio"
