"""Student submissions the grading tests autograde: right ones, and realistic wrong ones.

Each wrong submission is the solution with one step written the way a student plausibly
gets it wrong, plus the cells it must lose (grade_id -> words the message must contain).
Every other graded cell must keep full marks: a mistake costs its own step's points only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from tests.support.course import RELEASE_NB, answers_file, right_answers, solutions, submit, submit_as

STEP1 = "step1_database_url_solution"
STEP2 = "step2_pool_size_solution"
STEP3 = "step3_engine_solution"
STEP4 = "step4_app_solution"

# What a cell says when an earlier check already gave the mistake's message (one message per
# mistake), and what a hidden check's cell says when the visible check it builds on fails.
SEE_ABOVE = "for the reason given above"
GATED = "only counts once these checks above pass"

STEP4_ROUTE_HEAD = '''
from fastapi import Depends, FastAPI
from sqlalchemy import text

app = FastAPI()
'''
YIELD_DEPENDENCY = STEP4_ROUTE_HEAD + '''
async def get_connection():
    async with engine.connect() as conn:
        yield conn
'''


@dataclass
class Submission:
    name: str
    changes: dict[str, str]  # solution cell grade_id -> the student's code
    loses: dict[str, str] = field(default_factory=dict)  # graded cell -> words of its message
    quiz: str | None = None  # quiz_answers.json content; None: all the right answers
    extra_files: dict[str, str] = field(default_factory=dict)  # more files beside the notebook
    edit: object = None  # a function changing the notebook itself (cells, metadata)
    status: str = "graded"  # what the grading command must report
    note: str = ""  # words of its note, for a submission that cannot be graded
    flagged: bool = False  # the grading command must remove a tampering cell and flag it
    reason: str = ""  # a reason the grading command's report must give (course_grade/engine/task.py's codes)

    def answers(self) -> dict[str, str]:
        return {**solutions(), **self.changes}

    def quiz_file(self) -> str | None:
        return answers_file(right_answers()) if self.quiz is None else (self.quiz or None)


CORRECT_VARIANTS = [
    Submission("solution", {}),
    Submission("variant_begin_mappings_default_depends", {STEP4: STEP4_ROUTE_HEAD + '''
async def get_connection():
    async with engine.begin() as conn:   # a transaction that commits at the end
        yield conn

@app.get("/items")
async def items(conn=Depends(get_connection)):
    result = await conn.execute(text("SELECT id, name, price FROM items ORDER BY name"))
    return result.mappings().all()
'''}),
    Submission("variant_return_connection_route_closes", {STEP4: STEP4_ROUTE_HEAD + '''
async def get_connection():
    return await engine.connect()

@app.get("/items")
async def items(conn=Depends(get_connection)):
    try:
        result = await conn.exec_driver_sql("SELECT * FROM items")
        return [dict(row._mapping) for row in result.fetchall()]
    finally:
        await conn.close()
'''}),
    Submission("variant_session_and_engine_keywords", {
        STEP3: '''
import sqlalchemy.ext.asyncio as sa_async
engine = sa_async.create_async_engine(url=DATABASE_URL, pool_size=POOL_SIZE, pool_pre_ping=True)
''',
        STEP4: STEP4_ROUTE_HEAD + '''
from typing import Annotated
from sqlalchemy.ext.asyncio import AsyncSession

async def get_connection():
    async with AsyncSession(engine) as session:
        yield session

@app.get("/items")
async def items(session: Annotated[AsyncSession, Depends(get_connection)]) -> list[dict]:
    rows = (await session.execute(text("SELECT * FROM items"))).mappings()
    return [dict(r) for r in rows]
'''}),
]

WRONG = [
    Submission("wrong_url_sync_driver", {STEP1: 'DATABASE_URL = "sqlite:///./test.db"'},
               {"step1_database_url": "synchronous driver"}),
    Submission("wrong_pool_size_string", {STEP2: 'POOL_SIZE = "5"'},
               {"step2_pool_size": "without quotes"}),
    Submission("pool_size_hard_coded", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine
engine = create_async_engine(DATABASE_URL, pool_size=5)
'''}, {"step3_pool_size_uses_variable": "typed in as a number"}),
    Submission("pool_size_not_passed", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine
engine = create_async_engine(DATABASE_URL)
'''}, {"step3_pool_size_uses_variable": "without pool_size"}),
    Submission("sync_create_engine", {STEP3: '''
from sqlalchemy import create_engine
engine = create_engine(DATABASE_URL, pool_size=POOL_SIZE)
'''}, {"step3_engine_is_async": "create_async_engine", "step3_engine_connects": SEE_ABOVE}),
    Submission("return_inside_async_with", {STEP4: STEP4_ROUTE_HEAD + '''
async def get_connection():
    async with engine.connect() as conn:
        return conn

@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row._mapping) for row in result]
'''}, {
        "step4_items_returns_all_rows": "`return` inside `async with`",
        "step4_connections_returned": SEE_ABOVE,
        "step4_items_reads_the_table": GATED,
        "step4_concurrent_requests_share_the_pool": GATED,
    }),
    Submission("hard_coded_rows", {STEP4: YIELD_DEPENDENCY + '''
@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    return [
        {"id": 1, "name": "Espresso cup", "price": 4.5},
        {"id": 2, "name": "Pour-over kettle", "price": 39.0},
        {"id": 3, "name": "Coffee grinder", "price": 89.99},
    ]
'''}, {"step4_items_reads_the_table": "instead of returning a fixed or saved list"}),
    Submission("leaking_connections", {STEP4: STEP4_ROUTE_HEAD + '''
async def get_connection():
    return await engine.connect()   # never closed

@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
'''}, {"step4_connections_returned": "leaks connections",
       "step4_concurrent_requests_share_the_pool": GATED}),
    Submission("rows_as_lists", {STEP4: YIELD_DEPENDENCY + '''
@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    result = await conn.execute(text("SELECT * FROM items"))
    return [list(row) for row in result]
'''}, {"step4_items_returns_all_rows": "as lists, not dicts",
       "step4_connections_returned": SEE_ABOVE,
       "step4_items_reads_the_table": GATED,
       "step4_concurrent_requests_share_the_pool": GATED}),
]


def _quiz_cells() -> dict[str, str]:
    """question id -> grade_id of its graded cell."""
    from tests.support.course import graded_cells

    return {gid.split("_", 1)[1]: gid for gid in graded_cells() if gid.startswith("quiz")}


def _wrong_letter(right: str) -> str:
    return "ABCD"[("ABCD".index(right) + 1) % 4]


def _quiz_cases() -> list[Submission]:
    right, cells = right_answers(), _quiz_cells()
    all_wrong = {qid: _wrong_letter(letter) for qid, letter in right.items()}
    partly = dict(right)
    wrong_ids = sorted(right)[:4]  # 4 wrong, 6 right
    partly.update({qid: all_wrong[qid] for qid in wrong_ids})
    return [
        Submission("quiz_all_wrong", {}, {cells[q]: "which is not right" for q in right}, answers_file(all_wrong)),
        Submission("quiz_partly_right", {}, {cells[q]: "which is not right" for q in wrong_ids}, answers_file(partly)),
        Submission("quiz_missing_file", {}, {cells[q]: "quiz_answers.json is missing" for q in right}, ""),
        Submission("quiz_malformed_file", {}, {cells[q]: "not readable JSON" for q in right},
                   '{"answers": {"url_driver": "B",'),
    ]


QUIZ_CASES = _quiz_cases()


# ---------------------------------------------------------------- adversarial submissions

def _drop_cell(grade_id):
    def edit(nb):
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != grade_id]
    return edit


def _set_cell(grade_id, source=None, **meta):
    def edit(nb):
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                if source is not None:
                    cell.source = source
                cell.metadata["nbgrader"].update(meta)
    return edit


def _then(*edits):
    def edit(nb):
        for e in edits:
            e(nb)
    return edit


STEP4_CELLS = ("step4_app_has_items_route", "step4_items_returns_all_rows", "step4_connections_returned",
               "step4_items_reads_the_table", "step4_concurrent_requests_share_the_pool")
WRONG_URL = {STEP1: 'DATABASE_URL = "sqlite:///./test.db"'}
URL_LOST = {"step1_database_url": "synchronous driver"}
FAKE_CHECKS = "def __getattr__(name):\n    return lambda *args, **kwargs: None\n"
QUIZ_LOST_MISSING = "quiz_answers.json is missing"


def _quiz_missing() -> dict[str, str]:
    return {gid: QUIZ_LOST_MISSING for gid in _quiz_cells().values()}


ADVERSARIAL = [
    Submission("attack_edit_locked_test_cell", WRONG_URL, URL_LOST,
               edit=_set_cell("step1_database_url", source="pass  # always passes")),
    Submission("attack_delete_locked_test_cell", WRONG_URL, {"step1_database_url": ""},
               edit=_drop_cell("step1_database_url")),
    Submission("attack_change_cell_metadata", WRONG_URL, URL_LOST,
               edit=_set_cell("step1_database_url", points=100)),
    Submission("attack_monkeypatch_checks", {STEP1: WRONG_URL[STEP1] + '''
import autograder.checks
autograder.checks.step1_database_url = lambda ns: None   # every check passes...
'''}, URL_LOST, flagged=True),
    Submission("attack_replace_module_in_sys_modules", {STEP1: WRONG_URL[STEP1] + '''
import sys, types
fake = types.ModuleType("autograder.checks")
fake.__getattr__ = lambda name: (lambda *args, **kwargs: None)
sys.modules["autograder.checks"] = fake
'''}, URL_LOST, flagged=True),
    Submission("attack_fake_package_beside_notebook", WRONG_URL, URL_LOST,
               extra_files={"autograder/__init__.py": "", "autograder/checks.py": FAKE_CHECKS}),
    Submission("attack_read_hidden_tests_from_disk", {STEP4: solutions()[STEP4] + '''

import glob, json, re
for path in glob.glob("../../../**/*.ipynb", recursive=True):   # the instructor's source notebook
    found = re.findall(r'check_answer\\(\\s*"(\\w+)",\\s*correct="(\\w)"', open(path).read())
    if found:
        json.dump({"answers": dict(found)}, open("quiz_" + "answers.json", "w"))
'''}, {}, quiz="", flagged=True),
    Submission("attack_stderr_writer",
               {STEP2: 'import sys\nprint("a warning of my own", file=sys.stderr)\nPOOL_SIZE = 5'}),
    Submission("attack_os_exit", {STEP2: "import os\nos._exit(1)"}, status="failed", note="kernel died"),
    Submission("attack_infinite_loop", {STEP2: "while True:\n    pass\nPOOL_SIZE = 5"},
               {"step2_pool_size": "was stopped before it finished"}, reason="cell time limit"),
    Submission("attack_sleep_past_the_cell_limit", {STEP1: "import time\ntime.sleep(10_000)\n" + solutions()[STEP1]},
               {"step1_database_url": "was stopped before it finished"}, reason="cell time limit"),
    Submission("attack_delete_test_db", {STEP4: solutions()[STEP4] + '\n\nimport os\nos.remove("test.db")'},
               {"step4_items_returns_all_rows": "run the setup cell", "step4_connections_returned": SEE_ABOVE,
                "step4_items_reads_the_table": GATED, "step4_concurrent_requests_share_the_pool": GATED}),
    Submission("attack_huge_output", {STEP2: 'print("x" * 20_000_000)\nPOOL_SIZE = 5'}),
    Submission("attack_corrupt_notebook", {}, status="failed", note="not a readable .ipynb",
               edit=lambda nb: "{this is not json", reason="corrupt"),
]
# the read-from-disk attack's step 4 cell is removed whole (so step 4 is lost), and no quiz answers were given
next(a for a in ADVERSARIAL if a.name == "attack_read_hidden_tests_from_disk").loses.update(_quiz_missing())


# ------------------------------------------------- attacks on the graded quiz at grading time
# Each runs in the step-4 cell (after the solution), while nbgrader grades, in a submission
# that never answered the quiz (no quiz_answers.json) or answered it all wrong. The quiz is
# scored outside the kernel from the file as collected (course_grade/nbgrader_ext/collect_quiz_answers.py,
# quiz_grading.py), so each must score 0 on the quiz, even under stock `nbgrader autograde`.

def _quiz_attack(name: str, code: str, quiz: str = "") -> Submission:
    words = QUIZ_LOST_MISSING if quiz == "" else "which is not right"
    return Submission(name, {STEP4: solutions()[STEP4] + "\n\n" + code.strip() + "\n"},
                      {gid: words for gid in _quiz_cells().values()}, quiz=quiz)


# the key, as an attacker who stole or guessed it would have it
_RIGHT = "{" + ", ".join(f'"{q}": "{a}"' for q, a in sorted(right_answers().items())) + "}"

_WRITE_ANSWERS = f'''
import json, os
me = os.path.basename(os.path.dirname(os.getcwd()))   # autograded/<student>/connection-pooling
for folder in [".", "../../../submitted/" + me + "/connection-pooling"]:   # here, and "as collected"
    with open(folder + "/quiz_" + "answers.json", "w") as f:
        json.dump({{"format": 1, "answers": {_RIGHT}}}, f)
'''
_KEY_FROM_DISK = '''
import glob, json, re
for path in glob.glob("../../../**/*.ipynb", recursive=True):   # the instructor's source notebook
    cells_text = "".join("".join(cell["source"]) for cell in json.load(open(path))["cells"])
    found = re.findall(r'check_answer\\(\\s*"(\\w+)",\\s*correct="(\\w)"', cells_text)
    if found:
        json.dump({"answers": dict(found)}, open("quiz_" + "answers.json", "w"))
'''
_INPUT_TRANSFORMER = '''
def _quiz_cells_pass(lines):
    return ["pass\\n"] if any("check_" + "answer" in line for line in lines) else lines

get_ipython().input_transformers_post.append(_quiz_cells_pass)
'''
_PRE_RUN_CELL = f'''
import json

def _before_quiz_cell(info):
    if "check_" + "answer" in (info.raw_cell or ""):
        with open("quiz_" + "answers.json", "w") as f:
            json.dump({{"answers": {_RIGHT}}}, f)

get_ipython().events.register("pre_run_cell", _before_quiz_cell)
'''
_PATCH_QUIZ = '''
_q = __import__("autogr" + "ader.qu" + "iz", fromlist=["x"])
setattr(_q, "check_" + "answer", lambda *args, **kwargs: None)
setattr(_q, "check_" + "answered", lambda *args, **kwargs: None)
'''

QUIZ_ATTACKS = [
    _quiz_attack("quiz_attack_writes_answers_at_grading_time", _WRITE_ANSWERS),
    _quiz_attack("quiz_attack_reads_key_from_disk", _KEY_FROM_DISK),
    _quiz_attack("quiz_attack_input_transformer", _INPUT_TRANSFORMER),
    _quiz_attack("quiz_attack_pre_run_cell_hook", _PRE_RUN_CELL),
    _quiz_attack("quiz_attack_patches_check_answer", _PATCH_QUIZ),
    _quiz_attack("quiz_attack_all_wrong_then_patch", _PATCH_QUIZ + _WRITE_ANSWERS,
                 quiz=answers_file({q: _wrong_letter(a) for q, a in right_answers().items()})),
]


# ------------------------------------------- tampering found by meaning (course_grade/nbgrader_ext/tamper_analysis.py)
# Honest cells that merely use the words or calls a text scan would catch: full marks, never
# flagged (the same cells are unit-tested in tests/course_grade/nbgrader_ext/test_tamper_analysis.py).

def _lookalikes() -> list[Submission]:
    from tests.support.tamper_cases import HONEST

    cell = {"re_compile": STEP1, "comment_mentions_grader": STEP2, "statement_compile": STEP1,
            "dict_named_checks": STEP1, "fstring_sys_modules": STEP1, "environ_default": STEP1,
            "getenv_default": STEP2, "path_in_url": STEP1, "sys_stderr_version": STEP2, "type_name": STEP2,
            "method_named_eval": STEP2, "literal_getattr": STEP2, "logging_name": STEP2, "time_magic": STEP2,
            "help_on_a_name": STEP2, "decimal_and_dataclass": STEP2, "sqlalchemy_inspect_and_event": STEP3,
            "sqlite_peek": STEP1, "super_init": STEP2}
    assert set(cell) == set(HONEST)
    return [Submission(f"honest_{name}", {cell[name]: code}) for name, code in HONEST.items()] + [
        # the lesson's read-only cell that calls GET /items, copied under the student's route
        Submission("honest_copied_request_cell",
                   {STEP4: solutions()[STEP4] + "\n\n" + _lesson_cell("step4_call_items")}),
    ]


def _lesson_cell(cell_id: str) -> str:
    import nbformat

    from tests.support.course import RELEASE_NB

    return next(c.source for c in nbformat.read(RELEASE_NB, as_version=4).cells if c.id == cell_id)


HONEST_LOOKALIKES = _lookalikes()

BLANK_CELL = "# YOUR CODE HERE\nraise NotImplementedError()"

# These were graded before: killing the kernel failed the whole submission, and deleting the
# lesson's database cost step 4's requests. Now the cell is removed for review: the rest is graded.
for _attack in ADVERSARIAL:
    if _attack.name == "attack_os_exit":
        _attack.status, _attack.note, _attack.flagged = "graded", "", True
        _attack.loses = {"step2_pool_size": "is not defined"}
    elif _attack.name == "attack_delete_test_db":  # only the removal is removed: step 4 keeps its points
        _attack.flagged, _attack.loses = True, {}

ADVERSARIAL += [
    # five lines in the step-1 cell, no step done: an input transformer turns every check into `pass`
    Submission("attack_input_transformer_blank_notebook", {
        STEP1: '''
def _no_checks(lines):
    return ["pass\\n"] if any("checks." in line for line in lines) else lines

get_ipython().input_transformers_post.append(_no_checks)
''', STEP2: BLANK_CELL, STEP3: BLANK_CELL, STEP4: BLANK_CELL}, {gid: "" for gid in (
        "step1_database_url", "step2_pool_size", "step3_engine_is_async", "step3_engine_pool_size",
        "step3_pool_size_uses_variable", "step3_engine_connects", *STEP4_CELLS)}, flagged=True),
    # the checks patched through names built at run time (a text scan cannot see them)
    Submission("attack_patch_checks_by_runtime_names", {STEP1: WRONG_URL[STEP1] + '''
_checks = getattr(__import__("autogr" + "ader.checks"), "chec" + "ks")
setattr(_checks, "step1_" + "database_url", lambda ns: None)
'''}, URL_LOST, flagged=True),
    # an exception handler that hides every failing check
    Submission("attack_custom_exception_handler", {STEP1: WRONG_URL[STEP1] + '''
get_ipython().set_custom_exc((Exception,), lambda shell, etype, value, tb, tb_offset=None: None)
'''}, URL_LOST, flagged=True),
    # the course gradebook overwritten from a cell (every other student's grades)
    Submission("attack_overwrite_gradebook", {STEP4: solutions()[STEP4] + '''

for up in ("../../..", "../../../.."):
    open(up + "/gradebook.db", "wb").write(b"")
'''}, {}, flagged=True),
    # a detached background process, the way a student starts a server
    Submission("attack_background_process", {STEP4: solutions()[STEP4] + '''

import subprocess
subprocess.Popen(["sleep", "600"], start_new_session=True)
'''}, {}, flagged=True),
]


# The gallery graded end to end (tests/conftest.py's stock_graded, the grading command's
# tests): every honest submission, and the release notebook handed in untouched as BLANK.
BLANK = "blank_release"
HONEST = CORRECT_VARIANTS + WRONG + QUIZ_CASES


def submit_honest(course):
    for sub in HONEST:
        submit_as(course, sub)
    submit(course, BLANK, nbformat.read(RELEASE_NB, as_version=4))
