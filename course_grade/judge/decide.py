"""The judge's verdicts: what it observed (observe.Observed) -> one CheckRecord per build-step check.

Each rule reads only what the judge saw from outside the student's process; the server's own
account (`facts`) picks a sentence, never a pass. The sentences and named-mistake keys are
autograder.verdicts', the ones the in-kernel checks use for the same mistake.
"""
from __future__ import annotations

from autograder import reference as ref
from autograder import verdicts
from autograder.explain import Said, clip, in_cell, named
from autograder.records import CheckRecord
from course_grade.judge.observe import OTHER_POOL_SIZE, Answer, AppSeen, Observed, PoolSeen, reported

COULD_NOT_RUN = ("The grader could not finish running your notebook in a fresh kernel ({why}): "
                 "restart the kernel, run every cell from the top, and fix the first one that fails or never ends.")
SEED_WHEN = "With the rows the setup cell made"
FRESH_WHEN = "With 7 new rows put in the table at grading time"


class Failed(Exception):
    """A rule found something to fix."""

    def __init__(self, said: Said):
        super().__init__(said.message)
        self.said = said


def _fail(said: Said | str) -> None:
    raise Failed(said if isinstance(said, Said) else Said(said))


def declared() -> dict:
    """grade_id -> the registry's declaration of every check."""
    import autograder.checks  # noqa: F401 - declares every check
    from autograder import registry

    return {c.name: c for c in registry.declared()}


def step_of(grade_id: str | None) -> int | None:
    """The step of one of the notebook's solution cells (grade_id `stepN_..._solution`)."""
    if grade_id and grade_id.startswith("step") and grade_id[4:5].isdigit():
        return int(grade_id[4])
    return None


def _cell_failed(seen: Observed, step: int) -> None:
    """The step's own cell stopped with an error when the judge ran it."""
    for run in reversed(seen.cells):
        if step_of(run.grade_id) == step:
            if run.ename is not None:
                _fail(in_cell(step, run.error(), run.source))
            return


def _router(app: AppSeen) -> str | None:
    """The APIRouter the server says `app` leaves out (a name only chooses the 404's sentence)."""
    name = app.facts.get("router_left_out")
    return name if isinstance(name, str) and name.isidentifier() else None


def _answer_rows(answer: Answer | None, router: str | None = None) -> list:
    if answer is None or answer.status is None:
        why = answer.error if answer else "no request was made"
        _fail(f"GET /items got no answer within {ref.CHECK_TIME_LIMIT} s ({why}): a request that waits for a "
              "connection that never comes back is the usual cause; give each connection back after the request.")
    found, said = verdicts.rows(answer.status, answer.body, router=router, location=answer.location)
    if said is not None:
        _fail(said)
    return found


def _same(found: list, want: list, when: str, **kw) -> None:
    said = verdicts.same_rows(found, want, when, **kw)
    if said is not None:
        _fail(said)


# --------------------------------------------------------------------------- steps 1 and 2

def step1_database_url(seen: Observed) -> None:
    _cell_failed(seen, 1)
    said = verdicts.database_url(reported(seen.values, "DATABASE_URL"))
    if said:
        _fail(said)


def step2_pool_size(seen: Observed) -> None:
    _cell_failed(seen, 2)
    said = verdicts.pool_size(reported(seen.values, "POOL_SIZE"))
    if said:
        _fail(said)


# --------------------------------------------------------------------------------- step 3

def _probe(seen: Observed) -> PoolSeen:
    if not seen.standing_in:
        _cell_failed(seen, 3)
    probe = seen.probe
    if probe is None:
        _fail(COULD_NOT_RUN.format(why=seen.trouble or "it stopped before step 3"))
    facts = probe.facts
    if facts.get("error"):  # the step-3 cell, run again with the correct values standing in, failed
        _fail(f"Your step 3 cell, run again with the correct values of steps 1 and 2, stopped with "
              f"{facts['error']}: fix it and run it again.")
    if facts.get("engine_kind") == "missing":
        _fail(verdicts.ENGINE_MISSING)
    if facts.get("serve_error") or facts.get("call_error"):
        _fail(COULD_NOT_RUN.format(why=facts.get("serve_error") or facts.get("call_error")))
    return probe


def _async(probe: PoolSeen) -> None:
    """The engine is an AsyncEngine, as the server says (a sync Engine is served through a
    wrapper, so its pool can still be seen: what it says can fail a check, never pass one)."""
    said = verdicts.engine_kind(str(probe.facts.get("engine_kind")))
    if said:
        _fail(said)


def _reads(probe: PoolSeen, database_name: str) -> None:
    """The probe's first request answered the rows the judge had just written."""
    answer = probe.first
    if answer is None or answer.status != 200:
        detail = (answer.body if answer and answer.status else (answer.error if answer else "")) or "no answer"
        _fail(f"`engine` could not read the table `items` from {database_name} ({clip(detail, 300)}); "
              "check DATABASE_URL in step 1 and the engine of step 3.")
    found, said = verdicts.rows(answer.status, answer.body)
    if said is not None or verdicts.same_rows(found, probe.wanted, "") is not None:
        url = probe.facts.get("url")
        _fail(f"`engine` read another database than {database_name}"
              + (f" ({url!r})" if url else "") + ": pass DATABASE_URL as the first argument of create_async_engine.")


def step3_engine_is_async(seen: Observed) -> None:
    probe = _probe(seen)
    _async(probe)
    _reads(probe, ref.DB_FILE)
    if seen.rerun is None or seen.rerun.first is None:
        _fail(COULD_NOT_RUN.format(why=seen.trouble or "step 3 could not run again with another DATABASE_URL"))
    try:
        _reads(seen.rerun, "another file")
    except Failed:
        _fail(verdicts.URL_TYPED_IN)


def _pool(probe: PoolSeen, size: int, variable: bool) -> None:
    said = verdicts.pool_kind(probe.facts.get("pool_kind"))
    if said:
        _fail(said)
    if probe.opened or probe.after_first == 0:
        _fail(f"`engine` opened a new connection to the database for a second request instead of reusing the "
              f"one its pool kept: {'with POOL_SIZE = ' + str(size) + ', ' if variable else ''}create it with "
              f"{verdicts.STEP3_HOW}, and no `poolclass=` argument.")
    answered = sum(1 for a in probe.concurrent if a.status == 200)
    if answered < len(probe.concurrent):
        _fail(f"{len(probe.concurrent) - answered} of {ref.CONCURRENT_REQUESTS} requests made at once through "
              "`engine` failed: a queue pool makes the extra requests wait for a connection instead.")
    if probe.idle != size:
        if variable:
            _fail(f"with POOL_SIZE = {size}, your step 3 code still made a pool that keeps {probe.idle} connection(s) "
                  "open: the pool size is typed in as a number; pass pool_size=POOL_SIZE so that changing POOL_SIZE "
                  "changes the pool.")
        _fail(f"`engine`'s pool keeps {probe.idle} connection(s) open after use but POOL_SIZE is {size}: "
              "pass pool_size=POOL_SIZE to create_async_engine.")


def step3_engine_pool_size(seen: Observed) -> None:
    _pool(_probe(seen), ref.POOL_SIZE, variable=False)


def step3_pool_size_uses_variable(seen: Observed) -> None:
    _probe(seen)
    resized = seen.resized
    if resized is None or resized.first is None or resized.first.status != 200:
        _fail(f"with POOL_SIZE = {OTHER_POOL_SIZE}, your step 3 code, run again, made no engine that could be used: "
              "pass pool_size=POOL_SIZE and DATABASE_URL to create_async_engine.")
    _pool(resized, OTHER_POOL_SIZE, variable=True)


def step3_engine_connects(seen: Observed) -> None:
    probe = _probe(seen)
    _async(probe)
    answer = probe.first
    if answer is None or answer.status != 200:
        detail = (answer.body if answer and answer.status else (answer.error if answer else "")) or "no answer"
        _fail(f"`engine` could not connect to the database ({clip(detail, 300)}); check DATABASE_URL in step 1.")


# --------------------------------------------------------------------------------- step 4

def _app(seen: Observed) -> AppSeen:
    _cell_failed(seen, 4)
    app = seen.app
    if app is None:
        _fail(COULD_NOT_RUN.format(why=seen.trouble or "it stopped before step 4"))
    facts = app.facts
    if facts.get("app_kind") == "missing":
        _fail("`app` is not defined: create it in the step 4 cell with app = FastAPI() and run the cell.")
    if facts.get("serve_error") or facts.get("call_error"):
        _fail(Said(f"`app` did not start as a server starts it ({facts.get('serve_error') or facts.get('call_error')}):"
                   " if it has a lifespan, make its start-up work, then run the step 4 cell again.", "lifespan_failed"))
    return app


def step4_app_has_items_route(seen: Observed) -> None:
    app = _app(seen)
    if app.first is not None and app.first.status in (404, 405, 422, *verdicts.REDIRECTS):
        _answer_rows(app.first, _router(app))
    if app.facts.get("get_connection_kind") == "missing":
        _fail("`get_connection` is not defined: write the dependency `async def get_connection():` "
              "in the step 4 cell.")
    if app.without_dependency is None or app.without_dependency.status != 418:
        _fail(named("dependency_opened_by_hand"))


def _not_imported(seen: Observed, app: AppSeen) -> None:
    """GET /items failed (500) with a NameError for a name the step 4 cell uses but never
    imports (the lesson's read-only demo cell imported it in the student's kernel): named as
    the in-kernel check names it. The server's account picks the sentence; the 500 fails."""
    if app.first is None or app.first.status != 500 or not app.name_error:
        return
    source = next((run.source for run in reversed(seen.cells) if step_of(run.grade_id) == 4), "")
    said = in_cell(4, NameError(app.name_error), source)
    if said.mistake == "import_missing":
        _fail(said)


def step4_items_returns_all_rows(seen: Observed) -> None:
    app = _app(seen)
    _not_imported(seen, app)
    _same(_answer_rows(app.first, _router(app)), app.wanted, SEED_WHEN)


def step4_connections_returned(seen: Observed) -> None:
    app = _app(seen)
    _not_imported(seen, app)
    for answer in [app.first, *app.sequential]:
        _answer_rows(answer, _router(app))
    grown = max(app.reused, default=app.after_first) - app.after_first
    if grown > 0:
        _fail(verdicts.leak(grown))
    if app.after_first == 0 or 0 in app.reused or app.opened:
        _fail(verdicts.NOT_REUSED)
    if app.shutdown_error:
        _fail(Said(f"`app` did not stop cleanly ({app.shutdown_error}): make the code after `yield` in its lifespan "
                   "work (for example `await engine.dispose()`), then run the step 4 cell again.", "lifespan_failed"))


def step4_items_reads_the_table(seen: Observed) -> None:
    app = _app(seen)
    _same(_answer_rows(app.fresh_answer, _router(app)), app.fresh, FRESH_WHEN, fixed_list_likely=True)
    if _answer_rows(app.empty_answer, _router(app)) != []:
        _fail(verdicts.FIXED_LIST.format(when="With the table emptied"))


def step4_concurrent_requests_share_the_pool(seen: Observed) -> None:
    app = _app(seen)
    for answer in app.concurrent:
        _answer_rows(answer, _router(app))
    n, limit = ref.CONCURRENT_REQUESTS, app.facts.get("limit")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else ref.POOL_SIZE + 10
    if app.peak < 2:
        _fail(f"{n} requests took only {app.peak} connection(s) from `engine`'s pool: "
              "every request must get its connection from `engine` through get_connection.")
    if app.peak > limit:
        _fail(f"{n} requests held {app.peak} connections at once, more than the pool allows ({limit}).")


RULES = {rule.__name__: rule for rule in (
    step1_database_url, step2_pool_size, step3_engine_is_async, step3_engine_pool_size,
    step3_pool_size_uses_variable, step3_engine_connects, step4_app_has_items_route, step4_items_returns_all_rows,
    step4_connections_returned, step4_items_reads_the_table, step4_concurrent_requests_share_the_pool)}


def _waiting(check, passed: dict) -> CheckRecord:
    waiting = tuple(n for n in check.needs if not passed.get(n))
    titles = "; ".join(f"“{n}”" for n in waiting)
    return CheckRecord(check.name, check.step, check.points, False, None,
                       f"This hidden check only counts once these checks pass: {titles}. Make them pass first.",
                       waiting_for=waiting)


def decide(seen: Observed, checks: dict | None = None) -> dict[str, CheckRecord]:
    """grade_id -> the judge's record, for every declared check it has a rule for."""
    checks = declared() if checks is None else checks
    records: dict[str, CheckRecord] = {}
    for name, rule in RULES.items():
        check = checks.get(name)
        if check is None:
            continue
        if check.hidden and not all(records.get(n) and records[n].passed for n in check.needs):
            records[name] = _waiting(check, {n: r.passed for n, r in records.items()})
            continue
        stand_in = {3: bool(seen.standing_in), 4: bool(seen.app and seen.app.stand_in)}.get(check.step, False)
        try:
            rule(seen)
        except Failed as failed:
            records[name] = CheckRecord(name, check.step, check.points, False, failed.said.mistake,
                                        failed.said.message, stand_in=stand_in,
                                        unexplained=failed.said.unexplained)
        else:
            records[name] = CheckRecord(name, check.step, check.points, True, stand_in=stand_in)
    return records
