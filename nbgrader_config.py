"""nbgrader settings for the course. Run nbgrader commands from this folder."""
import os

from autograder.course import LEFTOVERS

c = get_config()  # noqa: F821 - provided by nbgrader

HERE = os.path.dirname(os.path.abspath(__file__))

# The course id names this course in the exchange (release/fetch/submit/collect).
c.CourseDirectory.course_id = "fastapi-connection-pooling"
# Course folders (source/, release/, submitted/, autograded/, feedback/) live beside this file.
c.CourseDirectory.root = HERE
# Never copy a kernel's leftovers into release/ or a graded folder: test.db is made by the
# notebook's set-up cell wherever it runs.
c.CourseDirectory.ignore = [*LEFTOVERS, "*.pyc", "feedback"]

# Per-cell time limit while autograding. A check bounds itself at 20 s (it never waits out
# SQLAlchemy's 30-second pool_timeout); 60 s leaves room on a busy grading machine.
c.Execute.timeout = 60

# Every kernel that runs a submission runs in a sandbox of its own (course_grade/kernels/sandbox.py):
# own PID namespace and network, read-only system, only its working folder writable, no view
# of the course folder, limits on memory, processes, file size and CPU. Where bwrap cannot
# start (or COURSE_SANDBOX=off), kernels run unsandboxed and one log line says what is missing.
# NotebookClient's trait: nbgrader's Execute (autograde, validate) and the grading workers'.
from course_grade.kernels.sandbox import SandboxedKernelManager  # noqa: E402

c.NotebookClient.kernel_manager_class = SandboxedKernelManager

# The exchange folder shared by instructors and students on one machine (a JupyterHub):
# set NBGRADER_EXCHANGE to use another place, e.g. in tests.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
# `course-grade setup exchange` makes it (mode 1777) and `course-grade setup students` writes the
# students' config from these two values; release_assignment never makes a missing exchange
# (course_grade/nbgrader_ext/release_into_existing_exchange.py).
from course_grade.nbgrader_ext.release_into_existing_exchange import ReleaseIntoExistingExchange  # noqa: E402

c.ExchangeFactory.release_assignment = ReleaseIntoExistingExchange

# nbgrader's LimitOutput counts lines; also cut outputs by size, every kind (streams, errors and
# their tracebacks, rich outputs of any mime type, output metadata, many small outputs), so one
# cell cannot bloat the graded notebook and the feedback page: 20,000 characters per text,
# 60,000 bytes of output per cell, 500,000 per notebook, and the output a cell is graded by is
# always kept, shortened (course_grade/nbgrader_ext/limit_output_size.py; c.LimitOutputSize.max_chars, etc.).
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from course_grade.nbgrader_ext.limit_output_size import LimitOutputSize  # noqa: E402

c.Autograde.autograde_preprocessors = [
    Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, LimitOutputSize,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]

# The graded quiz is scored outside the kernel: its answers file is read as collected, before
# any student code runs (sanitize pass), and each quiz cell's outputs are set from those
# answers and the key in its restored hidden test just before SaveAutoGrades reads them.
from course_grade.nbgrader_ext.collect_quiz_answers import CollectQuizAnswers  # noqa: E402
from course_grade.nbgrader_ext.grade_quiz_answers import GradeQuizAnswers  # noqa: E402

c.Autograde.sanitize_preprocessors.append(CollectQuizAnswers)
c.Autograde.autograde_preprocessors.insert(c.Autograde.autograde_preprocessors.index(SaveAutoGrades), GradeQuizAnswers)

# Each build step's verdict is computed outside the student's process
# (course_grade/nbgrader_ext/judge_build_steps.py): the notebook's cells run again in a fresh
# sandboxed kernel, its app is served as a deployment serves it (uvicorn, lifespan on), and the
# judge decides from real requests, rows it writes itself and the server's open connections.
# Where the judge and the in-kernel check disagree, the judge decides and the notebook is
# flagged for review. c.JudgeBuildSteps.enabled = False leaves the in-kernel checks alone.
from course_grade.nbgrader_ext.judge_build_steps import JudgeBuildSteps  # noqa: E402

c.Autograde.autograde_preprocessors.insert(c.Autograde.autograde_preprocessors.index(SaveAutoGrades), JudgeBuildSteps)

# Feedback shows every check's message but not the code of the hidden tests: stock nbgrader
# copies the graded notebook as it ran, hidden tests included (jupyter/nbgrader#917).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]

# A late submission's feedback page says first the score before and after nbgrader's late
# penalty and why (course_grade/nbgrader_ext/late_penalty_note.py; the figures of course_grade/late.py).
from course_grade.nbgrader_ext.late_penalty_note import LatePenaltyNote  # noqa: E402

c.GenerateFeedback.preprocessors.insert(c.GenerateFeedback.preprocessors.index(GetGrades) + 1, LatePenaltyNote)

# The graded quiz's key ("The answer is B: ...") on a feedback page (course_grade/nbgrader_ext/quiz_key_feedback.py):
#   "after_due_date" (default): only once the due date in the gradebook has passed and no student's
#       extension is still open; until then a wrong answer is only called wrong, and the page says
#       "The key will be shown after the due date." No due date: held back. A page keeps what it
#       said when made: run `nbgrader generate_feedback ASSIGNMENT --force` after the last deadline.
#   "always": the key with every wrong answer, as graded.   "never": right or wrong only.
from course_grade.nbgrader_ext.quiz_key_feedback import QuizKeyFeedback  # noqa: E402

c.QuizKeyFeedback.show_key = "after_due_date"
c.GenerateFeedback.preprocessors.insert(c.GenerateFeedback.preprocessors.index(ClearHiddenTests), QuizKeyFeedback)

# A feedback page a student can read (course_grade/nbgrader_ext/feedback_summary.py and its template):
# a summary at the top (steps passed, the quiz, the points, the first failing check's message),
# contents naming each graded cell by its check, and messages, tracebacks and URLs that wrap.
from course_grade.nbgrader_ext.feedback_summary import TEMPLATE, FeedbackSummary  # noqa: E402

c.GenerateFeedback.preprocessors.insert(c.GenerateFeedback.preprocessors.index(ClearHiddenTests), FeedbackSummary)
c.GenerateFeedback.HTMLExporter.template_file = TEMPLATE

# Tampering detected by meaning (course_grade/nbgrader_ext/tamper_analysis.py): before any student code runs, each
# student-written cell's syntax tree is checked against the lesson's allow-list; a statement
# that reaches for the grading machinery (and any statement that needs it) is commented out,
# the honest rest of the cell still runs, and the notebook is flagged for review in the
# gradebook (the formgrader's flag; REVIEW in the grading command's report).
from course_grade.nbgrader_ext.flag_tampering import FlagTampering  # noqa: E402

c.Autograde.autograde_preprocessors.insert(c.Autograde.autograde_preprocessors.index(Execute), FlagTampering)

# Nothing a submission leaves in its folder is followed or published
# (course_grade/nbgrader_ext/sweep_working_folder.py):
# in the sanitize pass, the copies nbgrader made of links in the submission are removed; right
# after the kernel ends, links, special files and hard links are removed (and flagged), then
# every file but the notebooks and nbgrader's own, so only those reach feedback/.
from course_grade.nbgrader_ext.sweep_working_folder import SweepWorkingFolder  # noqa: E402

c.Autograde.sanitize_preprocessors.append(SweepWorkingFolder)
c.Autograde.autograde_preprocessors.insert(c.Autograde.autograde_preprocessors.index(Execute) + 1, SweepWorkingFolder)

# A cell stopped at the per-cell time limit is named in the log and flagged for review in the
# gradebook (course_grade/nbgrader_ext/flag_cell_timeouts.py): otherwise it only loses its points.
from course_grade.nbgrader_ext.flag_cell_timeouts import FlagCellTimeouts  # noqa: E402

c.Autograde.autograde_preprocessors.insert(c.Autograde.autograde_preprocessors.index(Execute) + 1, FlagCellTimeouts)

# A submitted notebook nbgrader cannot read (empty, corrupt, no cells) is flagged for review in
# the gradebook with one line in the log saying why (course_grade/nbgrader_ext/flag_unreadable.py).
c.Autograde.pre_convert_hook = "course_grade.nbgrader_ext.flag_unreadable.flag_unreadable"

# `nbgrader export` (make export, and the grading command's grades.csv) writes stock's columns
# through the csv module, quoting what needs it, and with a leading ' on any cell a spreadsheet
# would run as a formula (a student id or name starting with = + - @): course_grade/safe_csv.py.
from course_grade.nbgrader_ext.safe_csv_export_plugin import SafeCsvExportPlugin  # noqa: E402

c.ExportApp.plugin_class = SafeCsvExportPlugin
