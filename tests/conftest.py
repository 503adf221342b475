import gc
import os
import sqlite3

# First: the tests go without jsonschema's "iri" parser, as the grading processes do (see
# course_grade.NOT_IMPORTED: ~2 s of CPU in every process that imports nbformat).
import course_grade  # noqa: F401

# isort: split
import pytest

from tests.support.course import autograde, make_course, results
from tests.support.submissions import BLANK, HONEST, submit_honest

# The throwaway PostgreSQL server's fixtures (pg_server, pg_url), for every test that names them.
pytest_plugins = ["tests.support.pg_server"]

# A lesson notebook run by a test shows the Grade my notebook button, which would start a
# self-grading service for the repository that outlives the test: tests/course_grade/selfgrade/test_selfgrade.py
# starts its own, in private folders.
os.environ.setdefault("COURSE_SELFGRADE_SERVICE", "off")


@pytest.fixture(autouse=True, scope="module")
def _settled_heap():
    """Every check ends with a full gc.collect() (autograder.report._quiet), as in a kernel. In
    this process each would rescan every object that earlier modules, their imports and their
    session fixtures made (~0.1 s of CPU for each check run here). Before each module: collect
    what is garbage (its finalizers run, as they would have), then move what is left out of the
    collector's sight; what this module's tests make (and leak) is collected as before."""
    gc.collect()
    gc.freeze()
    yield


@pytest.fixture
def anyio_backend():
    """Async tests run on asyncio, like a Jupyter kernel (anyio's pytest plugin)."""
    return "asyncio"


@pytest.fixture
def db_file(tmp_path):
    """A SQLite file with an `items` table of two rows, for the claim tests."""
    path = tmp_path / "claims.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        con.executemany("INSERT INTO items VALUES (?, ?, ?)", [(1, "a", 1.5), (2, "b", 2.25)])
    return path


@pytest.fixture
def db_url(db_file):
    return f"sqlite+aiosqlite:///{db_file}"


@pytest.fixture(scope="session")
def stock_graded(tmp_path_factory):
    """Stock `nbgrader autograde`, sequential, over every honest submission and the blank release."""
    course = make_course(tmp_path_factory.mktemp("stock") / "course")
    submit_honest(course)
    done, _seconds = autograde(course)
    assert done.returncode == 0, f"nbgrader autograde failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return course, {name: results(course, name) for name in [s.name for s in HONEST] + [BLANK]}


@pytest.fixture(scope="module")
def bwrap_works():
    """The red-team galleries' modules need the grading sandbox: skipped where it cannot start,
    failed under CI."""
    from course_grade.kernels import sandbox

    why = sandbox._probe()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox cannot start under CI: {why}")
        pytest.skip(f"the sandbox cannot start here: {why}")
