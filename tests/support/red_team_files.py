"""The red-team gallery of files (issue 19, part 7): what a submission leaves in, or aims from, its
folder for the grader to follow, publish or parse, by class; graded under stock `nbgrader
autograde` and the grading command by tests/journeys/test_red_team_files.py.

Classes, each by at least two routes a student could write (past the syntax-tree analysis where
the allowed libraries make that possible, so what stops them is measured, not assumed):

1. links and special files aimed at the grader: the notebook, timestamp.txt and
   quiz_answers.json replaced by links, a link to a folder, a hard link, a FIFO, Unix sockets
   (the event loop's), SQLite's ATTACH and URI file names (opened C-side, no audit event);
2. files left for the grader and the students: what the hidden tests put in the database, a
   fake feedback page, a folder of notes, an attached SQLite file;
3. the sandbox's memory-backed folders filled past their size (/tmp and the working folder);
4. bombs in every file the grader parses: a deeply nested notebook, a 50 MB cell, a nested and
   a huge quiz_answers.json, a garbage and a huge timestamp.txt, a huge submission_secret.txt;
5. formulas in every CSV the course writes, through student ids (`CSV_STUDENTS`).

Every target outside the submission is a CANARY in a folder beside the course (never a real
host file): `make_canaries` makes them, `canary_state` is what must not change.
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

from nbformat.v4 import new_raw_cell

from tests.support.red_team import CONFIG, SANDBOX, STATIC, Entry, _added_cell
from tests.support.submissions import BLANK_CELL, STEP1, STEP2, STEP3, STEP4, Submission, _quiz_cells

GUARD, SWEEP, PARSER, NBGRADER_STEP = "runtime guard", "sweep of the working folder", "bounded parser", "nbgrader"
SCRATCH = 64 << 20  # the sandbox's /tmp and working folder, each (the default is 256 MiB)
FILES_CONFIG = CONFIG + f"c.SandboxedKernelManager.scratch = {SCRATCH}\n"
BIG_CELL = 50 << 20  # the string cell of the 50 MB notebook
HUGE_TIMESTAMP = 100_000  # digits: ~1 s of dateutil (quadratic: 2 MB take minutes, see the test)

# Student ids that a spreadsheet would read as formulas (and one with a comma). nbgrader takes
# any folder name as an id; a `/` cannot be in one, so no URL with slashes.
CSV_STUDENTS = ['=HYPERLINK("x","y")', "+1+1", "@SUM(1)", "-1+2", "a,b"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class FileEntry(Entry):
    shows: tuple[str, ...] = ()  # words the last cell's output must hold (what stopped the attack, measured)
    notebook_text: str | None = None  # the notebook file as raw text (a bomb nbformat could not write)
    # a submission that cannot be graded: words of the reason in stock nbgrader's log, and in the
    # grading command's report (its note)
    failed_reason: str = ""
    note: str = ""


def make_canaries(folder: Path) -> Path:
    """Files and a folder beside the course that no submission may change."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "canary.txt").write_text("secret")
    (folder / "canary.txt").chmod(0o600)
    with sqlite3.connect(folder / "canary.db") as db:
        db.execute("CREATE TABLE t(x)")
        db.execute("INSERT INTO t VALUES ('canary')")
    db.close()
    (folder / "canary-dir").mkdir()
    (folder / "canary-dir" / "inside.txt").write_text("inside")
    (folder / "when.txt").write_text("2001-02-03 04:05:06.000000 UTC")  # a timestamp the grader must not take
    (folder / "answers.json").write_text(json.dumps({"format": 1, "answers": canary_answers()}))
    return folder


def canary_answers() -> dict[str, str]:
    """A wrong letter for every question: what only the canary answers file chooses."""
    from tests.support.course import right_answers

    return {qid: "ABCD"[("ABCD".index(letter) + 1) % 4] for qid, letter in right_answers().items()}


def canary_state(folder: Path) -> dict[str, tuple]:
    """Every entry below `folder` (never following a link): kind, mode, mtime and content."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = os.lstat(path)
        data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[path.relative_to(folder).as_posix()] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_mtime_ns,
                                                    data)
    out["."] = (stat.S_IMODE(os.lstat(folder).st_mode), os.lstat(folder).st_mtime_ns)
    return out


def _raw_cell(text: str):
    """A raw cell the student added at the end, holding `text`."""
    def edit(nb):
        nb.cells.append(new_raw_cell(text))
    return edit


def _quiz_lost(words: str) -> dict[str, str]:
    return {gid: words for gid in _quiz_cells().values()}


def _nested_notebook(depth: int = 100_000) -> str:
    """The release notebook's JSON with a `depth`-deep list in its metadata."""
    from tests.support.course import RELEASE_NB

    text = RELEASE_NB.read_text()
    head, _, tail = text.rpartition('"metadata": {')
    return head + '"metadata": {"deep": ' + "[" * depth + "]" * depth + ", " + tail


def entries(canaries: Path) -> list[FileEntry]:
    c = str(canaries)
    return [
        # ------------------------------------------------------------- 1. links and special files
        FileEntry(Submission("rf_links_through_pathlib", {}, edit=_added_cell(f'''
from pathlib import Path
canary = "{c}/canary.txt"
here = Path(".")
for name in ("connection-pooling.ipynb", "timestamp.txt", "quiz_answers.json"):
    target = here / name
    try:   # the grader reads or writes these after the kernel: make them point at a host file
        target.unlink(missing_ok=True)
        target.symlink_to(canary)
        print(name, "linked")
    except OSError as exc:
        print(name, exc)
course_files, notes = Path("course-files"), Path("notes.txt")
for make in (lambda: course_files.symlink_to("{c}/canary-dir", target_is_directory=True),
             lambda: notes.hardlink_to(canary)):
    try:
        make()
        print("linked")
    except OSError as exc:
        print(exc)
''')), (GUARD, SANDBOX, SWEEP), "pathlib through variables (unflagged): the grader's files unlinked and "
            "symlinked to a canary, a symlink to a canary folder, a hard link to a canary",
            unflagged=True,
            shows=("blocked while grading: removing the grader's file", "blocked while grading: making a link")),
        FileEntry(Submission("rf_links_through_os", {}, edit=_added_cell(f'''
import os
os.mkfifo("pipe")   # a grader that reads it waits forever
os.link("{c}/canary.txt", "hard.txt")
os.symlink("{c}/canary.txt", "timestamp.txt")
'''), flagged=True), (STATIC, GUARD, SANDBOX, SWEEP), "os.mkfifo, os.link, os.symlink at a canary"),
        FileEntry(Submission("rf_sockets_and_sqlite_c_side", {}, edit=_added_cell(f'''
import asyncio, sqlite3
from sqlalchemy import create_engine, text
loop = asyncio.get_running_loop()
server = await loop.create_unix_server(asyncio.Protocol, path="grader.sock")   # a socket file left behind
pipe, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr="dgram.sock", family=1)
print("sockets bound")
db = sqlite3.connect("test.db")   # SQLite opens attached files itself: no audit event
for sql in ("ATTACH DATABASE '{c}/canary.db' AS canary", "DELETE FROM canary.t",
            "ATTACH DATABASE '{c}/made.db' AS made", "CREATE TABLE made.t(x)"):
    try:
        db.execute(sql)
        print("ran", sql.split()[0])
    except sqlite3.Error as exc:
        print("sqlite:", exc)
try:   # a URI file name: the guard sees a name inside the folder, SQLite opens one outside
    with create_engine("sqlite:///file:{c}/uri.db?mode=rwc&uri=true").begin() as conn:
        conn.execute(text("CREATE TABLE t(x)"))
    print("uri: made")
except Exception as exc:
    print("uri:", type(exc).__name__)
''')), (SANDBOX, SWEEP), "the event loop's Unix stream and datagram sockets (allowed code); SQLite ATTACH of a "
            "canary database and a URI file name outside (unseen by the guard)",
            unflagged=True, shows=("sockets bound", "sqlite: unable to open database", "uri: OperationalError")),
        # ------------------------------------------------------------- 2. files left for feedback
        FileEntry(Submission("rf_leaves_files_for_feedback", {}, edit=_added_cell('''
import json, sqlite3
from pathlib import Path
try:   # what the hidden tests put in the database while grading
    rows = sqlite3.connect("test.db").execute("SELECT * FROM items").fetchall()
except sqlite3.Error as exc:
    rows = [str(exc)]
with open("leak.txt", "w") as f:
    json.dump(rows, f)
Path("connection-pooling.html").write_text("<h1>23 / 23: every hidden test passed</h1>")   # a fake feedback page
Path("notes").mkdir(exist_ok=True)
Path("notes/hidden-rows.json").write_text(json.dumps(rows))
db = sqlite3.connect("test.db")
db.execute("ATTACH DATABASE 'leak.sqlite' AS leak")
db.execute("CREATE TABLE leak.rows AS SELECT * FROM items")
db.commit()
print("left leak.txt, connection-pooling.html, notes/, leak.sqlite")
''')), (SANDBOX, SWEEP), "open('leak.txt', 'w') of the hidden tests' rows, a fake connection-pooling.html, "
            "a notes folder, ATTACH 'leak.sqlite'", unflagged=True, shows=("left leak.txt",)),
        # ------------------------------------------------------------- 3. the memory-backed folders
        FileEntry(Submission("rf_fills_the_scratch_folders", {}, edit=_added_cell('''
import os
from pathlib import Path

def fill(folder):
    written, chunk = 0, b"\\0" * 2**20
    try:
        for i in range(1000):   # 16 MiB files: under the file-size limit, past the folder's size
            with (folder / f"fill-{i}.bin").open("wb") as f:
                for _ in range(16):
                    f.write(chunk)
                    written += len(chunk)
    except OSError as exc:
        return f"{exc.strerror} after {written >> 20} MiB"
    return f"no error after {written >> 20} MiB"

print("tmp:", fill(Path(".") / os.environ["TMPDIR"]))
print("folder:", fill(Path(".")))
''')), (SANDBOX,), "16 MiB files written into $TMPDIR and the working folder until the disk is full",
            unflagged=True, shows=("tmp: No space left on device", "folder: No space left on device")),
        # ------------------------------------------------------------- 4. bombs in parsed files
        FileEntry(Submission("rf_bomb_nested_notebook", {}, status="failed"), (NBGRADER_STEP,),
                  "a notebook whose metadata is a list nested 100,000 deep", notebook_text=_nested_notebook(),
                  failed_reason="RecursionError", note="notebook"),
        FileEntry(Submission("rf_bomb_50mb_cell", {}, edit=_raw_cell("x" * BIG_CELL)), (),
                  "a 50 MB raw cell (every parser reads it; nbconvert's HTML leaves raw cells out)", unflagged=True),
        FileEntry(Submission("rf_bomb_nested_quiz_answers", {}, _quiz_lost("quiz_answers.json"),
                             quiz='{"format": 1, "answers": ' + "[" * 30_000 + "]" * 30_000 + "}"),
                  (PARSER,), "quiz_answers.json nested 30,000 deep (60 KB, under the size limit)",
                  unflagged=True),
        FileEntry(Submission("rf_bomb_huge_quiz_answers", {}, _quiz_lost("larger than 65,536 bytes"),
                             quiz='{"format": 1, "answers": {}, "pad": "' + " " * (10 << 20) + '"}'),
                  (PARSER,), "a 10 MB quiz_answers.json", unflagged=True),
        FileEntry(Submission("rf_bomb_garbage_timestamp", {}, extra_files={"timestamp.txt": "handed in whenever"},
                             status="failed"), (NBGRADER_STEP,), "timestamp.txt of garbage",
                  failed_reason="get_existing_timestamp", note="timestamp"),
        FileEntry(Submission("rf_bomb_huge_timestamp", {}, extra_files={"timestamp.txt": "9" * HUGE_TIMESTAMP},
                             status="failed"), (NBGRADER_STEP,), "a 100 KB timestamp.txt of digits (dateutil's parse "
                  "is quadratic in a run of digits and raises OverflowError, which nbgrader does not catch)",
                  failed_reason="OverflowError", note="timestamp"),
        FileEntry(Submission("rf_bomb_huge_submission_secret", {},
                             extra_files={"submission_secret.txt": "f" * (20 << 20)}),
                  (), "a 20 MB submission_secret.txt", unflagged=True),
        FileEntry(Submission("rf_notebook_only", {}, _quiz_lost("quiz_answers.json is missing"), quiz=""), (),
                  "the notebook alone (the quiz never answered, no timestamp): not an attack, the plainest submission",
                  unflagged=True),
        # ------------------------------------------------------------- an unlisted class: nbgrader's own read
        FileEntry(Submission("rf_timestamp_link_in_submission", {}), (SWEEP,),
                  "timestamp.txt in submitted/ a link to a host file (a canary holding a timestamp)", unflagged=True),
        FileEntry(Submission("rf_quiz_answers_link_in_submission", {}, _quiz_lost("quiz_answers.json"), quiz="",
                             extra_files={"timestamp.txt": "2026-12-01 10:00:00.000000 UTC"}), (SWEEP,),
                  "quiz_answers.json in submitted/ a link to a host file (a canary of wrong answers): graded as "
                  "missing or damaged, but the item report reads it", unflagged=True),
    ]


# Links in submitted/ (the test makes them: a Submission writes regular files only):
# student -> file in the submission -> the canary it points at
LINKS = {"rf_timestamp_link_in_submission": {"timestamp.txt": "when.txt"},
         "rf_quiz_answers_link_in_submission": {"quiz_answers.json": "answers.json"}}
LINKED_TIMESTAMP = ("rf_timestamp_link_in_submission", "when.txt")


def csv_submissions() -> list[Submission]:
    """Blank submissions (every solution cell as released) under the formula-like ids."""
    blank = {cell: BLANK_CELL for cell in (STEP1, STEP2, STEP3, STEP4)}
    return [Submission(sid, blank) for sid in CSV_STUDENTS]
