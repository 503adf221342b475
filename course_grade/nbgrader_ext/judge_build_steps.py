"""nbgrader preprocessor: each build step's verdict, computed outside the student's process.

Runs in `nbgrader autograde`'s second pass after `Execute` (`c.Autograde.autograde_preprocessors`,
nbgrader_config.py), before `SaveAutoGrades` reads the outputs, so stock nbgrader and the
grading command both use it. The judge (course_grade/judge/) runs the notebook's cells again
in a fresh sandboxed kernel, serves its app as a deployment does and decides each build-step
check from what it sees from outside.

The in-kernel checks stay for teaching (live messages, the progress panel, self-grading).
For each graded build-step cell:
- the judge's record goes into the cell's metadata (`course.judge`);
- when the judge and the in-kernel check agree, the cell keeps its outputs;
- when they disagree, the judge decides: the cell's outputs become the judge's record and,
  on a failure, its sentence; the kernel's outcome is kept beside it (`course.kernel_passed`),
  and the notebook is flagged for review in the gradebook (REVIEW in the grading command).
"""
from __future__ import annotations

import math

from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float

from autograder.records import CheckRecord
from course_grade.judge.decide import RULES
from course_grade.judge.run import judge
from course_grade.nbgrader_ext.flag_tampering import flag_in_gradebook
from course_grade.nbgrader_ext.grade_quiz_answers import error_output

JUDGED = "judged"  # notebook metadata (course.judged): the judge ran
DISAGREED = "judge_disagreed"  # notebook metadata: one line per cell where the judge overruled the kernel


def kernel_passed(cell) -> bool:
    """Whether the cell's outputs, as the kernel left them, earn its points (nbgrader's rule)."""
    points, most = utils.determine_grade(cell)
    return points is not None and math.isclose(points, most)


def judged_outputs(record: CheckRecord) -> list:
    record_output = new_output("display_data", data=record.bundle())
    return [record_output] + ([] if record.passed else [error_output(record.message)])


def _outcome(passed: bool) -> str:
    return "passed" if passed else "failed"


class JudgeBuildSteps(NbGraderPreprocessor):
    """Decide each graded build-step cell from the judge's observations."""

    enabled = Bool(True, help="Judge the build steps outside the kernel (False: the in-kernel checks decide "
                              "alone, as nbgrader does by default).").tag(config=True)
    cell_timeout = Float(None, allow_none=True, help="Seconds each of the notebook's cells may run in the judge's "
                         "kernel (default: c.Execute.timeout, the limit the notebook was graded with).")
    cell_timeout.tag(config=True)
    spare = None  # a grading worker's spare kernels: the judge's kernel is forked from their zygote

    def seconds(self) -> float:
        """Each cell's time limit in the judge's kernel: the one it had when the notebook ran."""
        if self.cell_timeout is not None:
            return self.cell_timeout
        limit = self.config.Execute.get("timeout", self.config.NotebookClient.get("timeout"))
        return float(limit) if isinstance(limit, (int, float)) and limit > 0 else 60.0

    def preprocess(self, nb, resources):
        cells = {cell.metadata.nbgrader["grade_id"]: cell for cell in nb.cells
                 if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)
                 and cell.metadata.nbgrader.get("grade_id") in RULES}
        if not self.enabled or not cells:
            return nb, resources
        spare = type(self).spare
        records, seen = judge(nb, self.config, getattr(spare, "zygote", None), self.seconds())
        if seen.trouble:
            self.log.warning("The judge could not see everything: %s", seen.trouble)
        disagreed = []
        for grade_id, cell in cells.items():
            record = records.get(grade_id)
            if record is None:
                continue
            course = cell.metadata.setdefault("course", {})
            course["judge"] = record.to_json()
            passed = kernel_passed(cell)
            course["kernel_passed"] = passed
            if passed == record.passed:
                continue
            line = (f"{grade_id}: the in-kernel check {_outcome(passed)}, the judge {_outcome(record.passed)}"
                    + ("" if record.passed else f" ({record.message})"))
            disagreed.append(line)
            self.log.warning("Judged outside the kernel, %s", line)
            cell.outputs = judged_outputs(record)
        course = nb.metadata.setdefault("course", {})
        course[JUDGED] = True
        course[DISAGREED] = disagreed
        if disagreed:
            flag_in_gradebook(resources, self.log)
        return nb, resources
