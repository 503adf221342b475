"""nbgrader preprocessor: the feedback page of a late submission says, at its top, the score
before and after nbgrader's late penalty and why (stock feedback shows only the score after
it, and the penalty as a line at the end of its list of cells).

It runs in `nbgrader generate_feedback` after `GetGrades` (c.GenerateFeedback.preprocessors,
nbgrader_config.py), reads the notebook's submission from the gradebook nbgrader is using
(course_grade/late.py: the same figures as the grading command's summary, grading-report.csv,
the item analysis and the LMS export) and puts one markdown cell first. On time: nothing.
"""
from __future__ import annotations

from nbformat.v4 import new_markdown_cell
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor

from course_grade.late import Late, late_of, penalty_method

# the note's cell carries this metadata key (a reader can find it; nbgrader ignores it)
NOTE_KEY = "course_late_penalty"


def late_of_page(config, resources) -> Late:
    """The Late of the notebook whose feedback page nbgrader is making (`resources["nbgrader"]`),
    read from the gradebook nbgrader is using, under the late rule of `config`."""
    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gb:
        sub = gb.find_submission(info["assignment"], info["student"])
        notebook = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
        return late_of(sub, penalty_method(config), notebook)


class LatePenaltyNote(NbGraderPreprocessor):
    """Put the late penalty's sentence first in a late submission's feedback page."""

    def preprocess(self, nb, resources):
        late = late_of_page(self.config, resources)
        if late.is_late:
            cell = new_markdown_cell(f"**Late submission.** {late.for_student()}")
            cell.metadata[NOTE_KEY] = {"seconds": late.seconds, "penalty": late.penalty, "score": late.score,
                                       "after": late.after, "max_score": late.max_score, "method": late.method}
            nb.cells.insert(0, cell)
        return nb, resources
