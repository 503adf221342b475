"""A grading worker process: imports nbgrader once, then autogrades one scratch course folder
per request (importing nbgrader costs seconds; a submission's notebook takes about as long).
It also keeps a spare kernel booting while it grades (course_grade/kernel_pool.py), so a
submission does not wait ~2 s for its kernel; each kernel still runs one submission only.

Protocol, one JSON object per line: requests {"scratch", "assignment", "student"} on stdin;
each answer on stdout is one line starting with MARK, so stray prints cannot be mistaken
for it. The parent (course_grade.grading) kills and replaces a worker that takes too long.
"""
from __future__ import annotations

import json
import os
import sys

MARK = "@@autograder-worker@@ "


def answer(fd, payload: dict) -> None:
    os.write(fd, (MARK + json.dumps(payload) + "\n").encode())


def main() -> None:
    # answers go to a private copy of stdout; everything else (nbgrader's own output) to stderr
    channel = os.dup(1)
    os.dup2(2, 1)
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from course_grade import kernel_pool

    if os.environ.get("AUTOGRADER_SPARE_KERNELS", "1") != "0":
        kernel_pool.SPARE = kernel_pool.Spare()
        kernel_pool.SPARE.start()
    answer(channel, {"ready": True})
    for line in sys.stdin:
        task = json.loads(line)
        try:
            os.chdir(task["scratch"])
            config = PyFileConfigLoader("nbgrader_config.py", path=task["scratch"]).load_config()
            if kernel_pool.SPARE is not None:
                kernel_pool.use_spare_kernels(config)
            api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
            result = api.autograde(task["assignment"], task["student"], force=True, create=True)
            answer(channel, {"success": bool(result.get("success")),
                             "log": (result.get("log") or "") + (result.get("error") or "")})
        except Exception as exc:  # report, and stay alive for the next submission
            answer(channel, {"success": False, "log": f"{type(exc).__name__}: {exc}"})
    if kernel_pool.SPARE is not None:
        kernel_pool.SPARE.close()


if __name__ == "__main__":
    main()
