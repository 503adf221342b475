"""The judge's rules (course_grade/judge/decide.py) on what it observed: a healthy server
passes every check, and each observation that shows a mistake fails its own check with the
in-kernel check's sentence and named mistake."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from autograder import reference as ref
from autograder import verdicts
from course_grade.judge.decide import decide
from course_grade.judge.observe import OTHER_POOL_SIZE, Answer, AppSeen, Observed, PoolSeen
from course_grade.judge.session import CellRun

SEED = [dict(r) for r in ref.SEED_ROWS]
ROWS = [{"id": 7, "name": "judge a1", "price": 1.5}]
LIMIT = ref.POOL_SIZE + 10


def ok(rows) -> Answer:
    return Answer(200, json.dumps(rows))


def pool(rows, idle, peak=LIMIT, **facts) -> PoolSeen:
    return PoolSeen(facts={"engine_kind": "AsyncEngine", "pool_kind": "AsyncAdaptedQueuePool", **facts},
                    wanted=rows, first=ok(rows), after_first=1, peak=peak,
                    concurrent=[ok(rows)] * ref.CONCURRENT_REQUESTS, idle=idle)


def healthy() -> Observed:
    fresh = [{"id": 900 + i, "name": f"judge {i}", "price": 2.0} for i in range(7)]
    app = AppSeen(facts={"app_kind": "FastAPI", "get_connection_kind": "function", "limit": LIMIT}, wanted=SEED,
                  first=ok(SEED), after_first=1, reused=[1, 1, 1], sequential=[ok(SEED)] * 3, peak=LIMIT,
                  concurrent=[ok(SEED)] * ref.CONCURRENT_REQUESTS, idle=ref.POOL_SIZE, fresh=fresh,
                  fresh_answer=ok(fresh), empty_answer=ok([]), without_dependency=Answer(418, "{}"))
    return Observed(cells=[CellRun(6, "step1_database_url_solution", "DATABASE_URL = ...")],
                    values={"DATABASE_URL": repr(ref.DATABASE_URL), "DATABASE_URL_type": "str",
                            "POOL_SIZE": repr(ref.POOL_SIZE), "POOL_SIZE_type": "int"},
                    probe=pool(ROWS, ref.POOL_SIZE), rerun=PoolSeen(facts={"engine_kind": "AsyncEngine"}, wanted=ROWS,
                                                                   first=ok(ROWS), after_first=1),
                    resized=pool(ROWS, OTHER_POOL_SIZE), app=app)


def failed(seen: Observed) -> dict[str, tuple[str | None, str]]:
    return {name: (r.mistake, r.message) for name, r in decide(seen).items() if not r.passed}


def test_a_healthy_server_passes_every_build_step_check():
    records = decide(healthy())
    assert len(records) == 11 and all(r.passed for r in records.values())
    assert sum(r.points for r in records.values()) == 13


@pytest.mark.parametrize("reused, words", [
    ([0, 0, 0], "does not reuse pooled connections"),   # dispose after each request, NullPool, a connection per request
    ([1, 0, 1], "does not reuse pooled connections"),
    ([2, 3, 4], "leaks connections: after GET /items finished, 3 connection(s)"),  # never given back
])
def test_connections_that_are_not_kept_for_the_next_request_lose_the_reuse_check(reused, words):
    seen = healthy()
    seen.app.reused = reused
    lost = failed(seen)
    assert set(lost) == {"step4_connections_returned", "step4_concurrent_requests_share_the_pool"}
    assert words in lost["step4_connections_returned"][1]
    assert lost["step4_concurrent_requests_share_the_pool"][1].startswith("This hidden check only counts once")
    if "reuse" in words:
        assert lost["step4_connections_returned"][0] == verdicts.NOT_REUSED.mistake


def test_no_connection_left_after_the_first_request_is_no_reuse_either():
    seen = healthy()
    seen.app.after_first, seen.app.reused = 0, [0, 0, 0]
    assert failed(seen)["step4_connections_returned"][0] == "connection_not_reused"


@pytest.mark.parametrize("peak, words", [(1, "took only 1 connection(s)"), (20, "more than the pool allows (15)")])
def test_twenty_requests_must_share_a_bounded_pool(peak, words):
    seen = healthy()
    seen.app.peak = peak
    assert words in failed(seen)["step4_concurrent_requests_share_the_pool"][1]


def test_a_pool_that_keeps_another_number_of_connections_loses_the_pool_size_checks():
    seen = healthy()
    seen.probe = pool(ROWS, idle=0, pool_kind="NullPool")
    seen.resized = pool(ROWS, idle=0, pool_kind="NullPool")
    lost = failed(seen)
    assert set(lost) == {"step3_engine_pool_size", "step3_pool_size_uses_variable"}
    assert "NullPool opens and closes a connection per use" in lost["step3_engine_pool_size"][1]
    seen = healthy()
    seen.resized = pool(ROWS, idle=ref.POOL_SIZE)  # the same pool whatever POOL_SIZE says: typed in
    lost = failed(seen)
    assert set(lost) == {"step3_pool_size_uses_variable"}
    assert f"with POOL_SIZE = {OTHER_POOL_SIZE}" in lost["step3_pool_size_uses_variable"][1]


def test_an_engine_that_ignores_database_url_reads_the_lessons_file_when_told_another():
    seen = healthy()
    seen.rerun = replace(seen.rerun, first=ok(SEED))  # not the rows the judge put in the other file
    assert failed(seen) == {"step3_engine_is_async": (None, verdicts.URL_TYPED_IN)}


def test_rows_that_do_not_follow_the_table_lose_the_hidden_reading_check():
    seen = healthy()
    seen.app.fresh_answer = ok(SEED)  # the rows of the set-up cell, whatever the table holds
    lost = failed(seen)
    assert set(lost) == {"step4_items_reads_the_table"}
    assert "fixed or saved list" in lost["step4_items_reads_the_table"][1]


def test_a_route_that_does_not_go_through_get_connection_loses_the_route_check():
    seen = healthy()
    seen.app.without_dependency = ok(SEED)  # still answered with get_connection refusing
    lost = failed(seen)
    assert set(lost) == {"step4_app_has_items_route"}
    assert lost["step4_app_has_items_route"][0] == "dependency_opened_by_hand"


def test_wrong_values_of_steps_1_and_2_cost_those_steps_and_step_3_is_judged_with_stand_ins():
    seen = healthy()
    seen.values.update(POOL_SIZE="'5'", POOL_SIZE_type="str", DATABASE_URL="'sqlite:///./test.db'")
    seen.standing_in = {"DATABASE_URL": ref.DATABASE_URL, "POOL_SIZE": ref.POOL_SIZE}
    records = decide(seen)
    assert [n for n, r in records.items() if not r.passed] == ["step1_database_url", "step2_pool_size"]
    assert "the string '5'" in records["step2_pool_size"].message
    assert "synchronous driver" in records["step1_database_url"].message
    assert all(r.stand_in for n, r in records.items() if n.startswith("step3"))


def test_a_cell_that_fails_in_the_judges_kernel_is_named_like_the_in_kernel_check_names_it():
    seen = healthy()
    seen.cells = [CellRun(6, "step1_database_url_solution", "DATABASE_URL = sqlite", "NameError",
                          "name 'sqlite' is not defined")]
    lost = failed(seen)
    assert list(lost) == ["step1_database_url"] and "step 1" in lost["step1_database_url"][1]


def test_a_judge_that_saw_nothing_fails_every_build_step_and_says_why():
    seen = Observed(trouble="a cell did not finish within 60 s")
    records = decide(seen)
    assert not any(r.passed for r in records.values())
    assert "a cell did not finish within 60 s" in records["step3_engine_connects"].message
    assert records["step1_database_url"].message.startswith("`DATABASE_URL` is not defined")


def test_a_request_that_opens_the_database_file_again_is_no_reuse_whatever_stays_open():
    # e.g. a file handle held open beside a new sqlite3 connection per request: the count of
    # open files stays steady, but the judge counts each open of the file (inotify)
    seen = healthy()
    seen.app.opened = 3
    assert failed(seen)["step4_connections_returned"][0] == "connection_not_reused"
    seen = healthy()
    seen.probe.opened = 1
    lost = failed(seen)
    assert set(lost) == {"step3_engine_pool_size", "step3_pool_size_uses_variable"}
    assert "opened a new connection to the database for a second request" in lost["step3_engine_pool_size"][1]


@pytest.mark.parametrize("grade_id, source, ename, evalue, key, words", [
    ("step3_engine_solution", "engine = create_async_engine(DATABASE_URL, max_connections=POOL_SIZE)", "TypeError",
     "Invalid argument(s) 'max_connections' sent to create_engine(), using configuration "
     "SQLiteDialect_aiosqlite/AsyncAdaptedQueuePool/Engine.  Please check that the keyword arguments are "
     "appropriate for this combination of components.", "connection_limit_argument", "PostgreSQL server setting"),
    ("step3_engine_solution", "engine.close()", "AttributeError", "'AsyncEngine' object has no attribute 'close'",
     "engine_has_no_method", "await engine.dispose()"),
    ("step3_engine_solution", "async with create_async_engine(DATABASE_URL) as engine: ...", "TypeError",
     "'AsyncEngine' object does not support the asynchronous context manager protocol", "async_with_engine",
     "async with engine.connect() as conn:"),
    ("step4_app_solution", "engine = app.state.engine", "AttributeError", "'State' object has no attribute 'engine'",
     "state_read_in_cell", "not at the top of the cell"),
], ids=["max_connections", "engine.close()", "async with engine", "app.state read in the cell"])
def test_the_judge_names_a_cell_error_from_its_name_and_text_alone(grade_id, source, ename, evalue, key, words):
    seen = healthy()
    seen.cells = [CellRun(9, grade_id, source, ename, evalue)]
    lost = failed(seen)
    step = grade_id[:5]
    assert lost and all(name.startswith(step) for name in lost), lost
    first = lost[next(iter(lost))]
    assert first[0] == key and words in first[1], first
    assert not any(r.unexplained for r in decide(seen).values() if not r.passed)


def test_a_404_from_a_router_left_out_says_to_include_it():
    seen = healthy()
    seen.app.first = Answer(404, '{"detail":"Not Found"}')
    seen.app.facts["router_left_out"] = "items_router"
    lost = failed(seen)
    assert lost["step4_app_has_items_route"] == (
        "router_not_included", "`app` does not answer GET /items (404 Not Found): your route is on `items_router`, an "
        "APIRouter that `app` does not include; add `app.include_router(items_router)`.")
    seen.app.facts["router_left_out"] = "router; import os"  # the server's account chooses a name, never code
    assert "@app.get" in failed(seen)["step4_app_has_items_route"][1]


def test_the_lessons_file_by_another_path_is_told_so():
    seen = healthy()
    seen.values.update(DATABASE_URL=repr("sqlite+aiosqlite:///test.db"))
    seen.standing_in = {"DATABASE_URL": ref.DATABASE_URL}
    lost = failed(seen)
    assert list(lost) == ["step1_database_url"]
    assert lost["step1_database_url"][0] == "url_same_file" and "wrong file" not in lost["step1_database_url"][1]


STEP4_VISIBLE = {"step4_app_has_items_route", "step4_items_returns_all_rows", "step4_connections_returned"}
STEP4_ALL = STEP4_VISIBLE | {"step4_items_reads_the_table", "step4_concurrent_requests_share_the_pool"}


def test_a_route_at_items_with_a_slash_is_named_and_its_redirect_never_followed():
    seen = healthy()
    redirect = Answer(307, "", location="http://judge/items/")
    seen.app.first, seen.app.sequential = redirect, [redirect] * 3
    seen.app.fresh_answer = seen.app.empty_answer = redirect
    seen.app.concurrent = [redirect] * ref.CONCURRENT_REQUESTS
    lost = failed(seen)
    assert set(lost) == STEP4_ALL, lost
    for name in STEP4_VISIBLE:
        assert lost[name] == ("route_has_trailing_slash", named_said("route_has_trailing_slash")), name
    assert "your route is at `/items/` but the lesson calls `/items`" in lost["step4_app_has_items_route"][1]


def test_a_redirect_elsewhere_is_no_answer_either():
    seen = healthy()
    seen.app.first = Answer(307, "", location="/api/items")
    message = failed(seen)["step4_app_has_items_route"][1]
    assert "GET /items answered a redirect (307) to `/api/items`" in message


def named_said(key: str) -> str:
    from autograder.explain import named

    return named(key).message


@pytest.mark.parametrize("name, imports", [
    ("Depends", "from fastapi import Depends"),
    ("AsyncConnection", "from sqlalchemy.ext.asyncio import AsyncConnection"),
])
def test_a_step_cell_that_does_not_import_a_name_it_uses_is_named_as_the_kernel_names_it(name, imports):
    """The judge runs the student's cells without the lesson's read-only ones (the demo cell
    imports Depends): the cell stops with a NameError, and the judge says what the in-kernel
    check, which runs the cell on its own, says."""
    from autograder.explain import in_cell

    source = "from fastapi import FastAPI\n\napp = FastAPI()\n"
    error = f"name '{name}' is not defined"
    seen = healthy()
    seen.cells.append(CellRun(20, "step4_app_solution", source, "NameError", error))
    lost = failed(seen)
    assert set(lost) == STEP4_ALL
    said = in_cell(4, NameError(error), source)
    assert said.mistake == "import_missing"
    assert said.message == (f"Your step 4 cell uses `{name}` but does not import it, so the cell fails when it runs "
                            f"on its own (in a fresh kernel, or exported as a .py file): add `{imports}` to that cell.")
    for check in STEP4_VISIBLE:
        assert lost[check] == ("import_missing", said.message), check


def test_a_name_used_only_inside_the_route_and_never_imported_is_named_from_the_servers_account():
    """The route uses `text` but its cell does not import it: the cell runs, and GET /items
    answers 500. The server's account (the NameError) picks the in-kernel check's sentence."""
    from autograder.explain import in_cell

    source = "from fastapi import Depends, FastAPI\n\napp = FastAPI()\n"
    seen = healthy()
    seen.cells.append(CellRun(20, "step4_app_solution", source))
    seen.app.first = Answer(500, "Internal Server Error")
    seen.app.name_error = "name 'text' is not defined"
    lost = failed(seen)
    said = in_cell(4, NameError("name 'text' is not defined"), source)
    assert lost["step4_items_returns_all_rows"] == ("import_missing", said.message)
    assert "add `from sqlalchemy import text` to that cell" in said.message
    assert "step4_app_has_items_route" not in lost, "the route exists and takes get_connection"
    seen.app.name_error = None  # no account: the 500 still fails, in other words
    assert failed(seen)["step4_items_returns_all_rows"][1].startswith("GET /items answered 500 instead of 200")
