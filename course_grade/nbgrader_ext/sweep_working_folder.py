"""nbgrader preprocessor: nothing a submission left in its folder is followed or published.

A kernel can leave links, pipes or hard links to other files in its working folder; nbgrader
then writes the graded notebook, changes file modes and copies files there (and the
feedback step copies every other file of the folder to `feedback/`, which students get).
`SweepWorkingFolder` is configured twice in `nbgrader_config.py`, so stock `nbgrader
autograde`, the grading command and self-grading all run it:

- in the sanitize pass (it reads the submission from `submitted/`, after nbgrader copied its
  files to `autograded/` and before any student code runs): a link or other special file in
  the submission has its copy in `autograded/` removed (nbgrader's copy followed it);
- right after `Execute` (the kernel has ended): in the autograded folder, anything that is
  not a regular file or folder, and any file with another name elsewhere (a hard link), is
  removed, never followed; then every file but the assignment's notebooks, nbgrader's own
  files and the assignment's source files goes too, so only those reach `feedback/`.

Links, special files and hard links are tampering: each is named in the notebook's metadata
(`course.swept`, which the grading command's report lists), a warning in the log, and the
notebook is flagged in the gradebook. A sandboxed kernel writes into a folder of its own
(course_grade/kernels/sandbox.py), so this finds them only where a kernel ran without the sandbox.
"""
from __future__ import annotations

import os
import stat

from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.course import NBGRADER_FILES
from course_grade.nbgrader_ext.flag_tampering import flag_in_gradebook

# nbgrader's files in a submission folder, kept beside the notebooks
SWEPT = "swept"  # notebook metadata: course.swept, what was removed as tampering


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a link"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "a special file"


def special_entries(folder: str) -> list[tuple[str, str]]:
    """(path relative to `folder`, what it is) for everything below it that is not a regular
    file with one name or a folder; never follows a link."""
    found = []
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                found.append((os.path.relpath(path, folder), "a hard link to another file"))
            elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                found.append((os.path.relpath(path, folder), _kind(st.st_mode)))
        dirs[:] = [d for d in dirs if stat.S_ISDIR(os.lstat(os.path.join(top, d)).st_mode)]
    return found


def _remove(path: str) -> None:
    """Remove `path` itself (a link, not what it points to; a folder with what it holds)."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files + dirs:
            child = os.path.join(top, name)
            (os.rmdir if stat.S_ISDIR(os.lstat(child).st_mode) else os.unlink)(child)
    os.rmdir(path)


class SweepWorkingFolder(NbGraderPreprocessor):
    """Remove (and flag) what a submission left in its folder that the grader could follow."""

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        here = resources.get("metadata", {}).get("path") or "."
        coursedir = CourseDirectory(config=self.config)
        graded = coursedir.format_path(coursedir.autograded_directory, info.get("student", "."),
                                       info.get("assignment", "."))
        if os.path.islink(graded) or (os.path.lexists(graded) and not os.path.isdir(graded)):
            raise RuntimeError(f"the autograded folder {graded} is not a folder: remove it and grade this "
                               "submission again")
        if not os.path.isdir(graded):  # sanitize pass of a lone notebook: nbgrader has copied nothing yet
            found = special_entries(here)
        elif os.path.realpath(here) == os.path.realpath(graded):  # after Execute: the kernel has ended
            found = special_entries(graded)
            for rel, _ in found:
                if os.path.lexists(os.path.join(graded, rel)):
                    _remove(os.path.join(graded, rel))
            self._keep_only_graders_files(graded, coursedir, info)
        else:  # the sanitize pass: nbgrader's copy followed the submission's links
            found = special_entries(here)
            for rel, _ in found:
                copy = os.path.join(graded, rel)
                if os.path.lexists(copy):
                    _remove(copy)
        if found:
            lines = [f"{rel}: {what}, removed unread" for rel, what in found]
            nb.metadata.setdefault("course", {}).setdefault(SWEPT, []).extend(lines)
            self.log.warning("Flagged for review, files left in the submission's folder: %s", "; ".join(lines))
            flag_in_gradebook(resources, self.log)
        return nb, resources

    def _keep_only_graders_files(self, graded: str, coursedir: CourseDirectory, info: dict) -> None:
        """Remove every file but nbgrader's and the assignment's own (its notebooks among them),
        so only those are copied to feedback/."""
        source = coursedir.format_path(coursedir.source_directory, ".", info.get("assignment", "."))
        kept = set(NBGRADER_FILES)
        for top, _dirs, files in os.walk(source):
            kept.update(os.path.relpath(os.path.join(top, name), source) for name in files)
        for top, _dirs, files in os.walk(graded, topdown=False):
            for name in files:
                rel = os.path.relpath(os.path.join(top, name), graded)
                if rel not in kept:
                    os.unlink(os.path.join(top, name))
            if top != graded and not os.listdir(top):
                os.rmdir(top)
