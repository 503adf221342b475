"""`SafeCsvExportPlugin`: `nbgrader export`'s grades.csv, quoted, with no formula in it.

Stock `CsvExportPlugin` (nbgrader/plugins/export.py, nbgrader 0.9.6) joins the values with
commas as they are: a comma in a student id or name splits its row, and an id or name starting
with = + - @ runs as a formula in a spreadsheet. This plugin writes the same columns, rows and
numbers, in the same order, through course_grade/safe_csv.py (with CRLF line ends). nbgrader_config.py sets it as
`ExportApp.plugin_class`, so `nbgrader export`, `make export` and the grading command use it.
"""
from __future__ import annotations

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins.export import CsvExportPlugin

from course_grade import safe_csv

COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
           "raw_score", "late_submission_penalty", "score", "max_score"]


class SafeCsvExportPlugin(CsvExportPlugin):
    """CsvExportPlugin's grades.csv, written by the csv module with every cell neutralised."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        students = [str(s) for s in self.student]
        assignments = [str(a) for a in self.assignment]
        self.log.info("Exporting grades to %s", dest)
        if assignments:
            self.log.info("Exporting only assignments: %s", assignments)
        if students:
            self.log.info("Exporting only students: %s", students)
        # CRLF line ends (RFC 4180), where stock writes '\n': the csv module quotes a cell holding
        # a CR only when the line end has one, and an unquoted CR splits the row when read back
        with open(dest, "w", newline="", encoding="utf-8") as fh:
            writer = safe_csv.Writer(fh)
            writer.writerow(COLUMNS)
            for assignment in gradebook.assignments:
                if assignments and assignment.name not in assignments:
                    continue
                for student in gradebook.students:
                    if students and student.id not in students:
                        continue
                    writer.writerow(self._row(gradebook, assignment, student))

    @staticmethod
    def _row(gradebook: Gradebook, assignment, student) -> list:
        """One student's row: stock's values (None as an empty cell, 0.0 without a submission)."""
        try:
            submission = gradebook.find_submission(assignment.name, student.id)
        except MissingEntry:
            timestamp, raw, penalty, score = None, 0.0, 0.0, 0.0
        else:
            timestamp, raw, penalty = submission.timestamp, submission.score, submission.late_submission_penalty
            score = max(0.0, raw - penalty)
        return [assignment.name, assignment.duedate, timestamp, student.id, student.last_name, student.first_name,
                student.email, raw, penalty, score, assignment.max_score]
