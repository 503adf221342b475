"""The stock nbgrader commands that follow grading (feedback, export), run in the background."""
from __future__ import annotations

import subprocess
import threading

from course_grade.course import Course, nbgrader_command, tool_env
from course_grade.engine.bundles import Graded


def after_grading(course: Course, rows: list[Graded], feedback: bool) -> list[list[str]]:
    """The nbgrader commands that follow grading: feedback for the students graded here whose
    worker could not make it (each worker makes its students' feedback: task.grade), then
    grades.csv. Students not graded in this run keep their feedback as it was."""
    steps = []
    if feedback:
        steps += [["generate_feedback", course.assignment, "--force", f"--student={o.student}"]
                  for o in rows if o.merged and o.feedback is None]
    steps.append(["export", "--to", str(course.root / "grades.csv")])
    return steps


class NbgraderSteps:
    """nbgrader commands run one after another in the background; `wait()` gives a message per
    command that failed."""

    def __init__(self, course: Course):
        self.course, self.thread, self.failed = course, None, []

    @property
    def started(self) -> bool:
        return self.thread is not None

    def start(self, steps: list[list[str]]) -> None:
        self.thread = threading.Thread(target=self._run, args=(steps,), name="nbgrader-steps", daemon=True)
        self.thread.start()

    def _run(self, steps) -> None:
        for step in steps:
            done = subprocess.run([*nbgrader_command(), *step], cwd=self.course.root, env=tool_env(),
                                  capture_output=True, text=True)
            if done.returncode:
                self.failed.append(f"nbgrader {step[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def wait(self) -> list[str]:
        if self.thread is not None:
            self.thread.join()
        return self.failed
