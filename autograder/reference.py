"""The values the lesson asks for, as its solution (autograder/solution.py) sets them."""
from autograder.solution import DATABASE_URL, POOL_SIZE  # noqa: F401

DB_FILE = "test.db"  # the file DATABASE_URL names, relative to the notebook's folder
TABLE = "items"
# the rows the lesson's set-up cells put in `items` (the lesson, the pool lab, the PostgreSQL notebook)
SEED_ROWS = (
    {"id": 1, "name": "Espresso cup", "price": 4.5},
    {"id": 2, "name": "Pour-over kettle", "price": 39.0},
    {"id": 3, "name": "Coffee grinder", "price": 89.99},
)

# A check never waits out SQLAlchemy's default 30-second pool_timeout: while a check runs,
# the pool gives up after this many seconds, and each check is bounded as a whole.
CHECK_POOL_TIMEOUT = 3
CHECK_TIME_LIMIT = 20
CONCURRENT_REQUESTS = 20
