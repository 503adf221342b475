"""hub/course_hub.py's checks of what it is given (fast; `make hub` itself runs in
tests/journeys/test_hub.py)."""
from __future__ import annotations

import pytest

from hub import course_hub


def test_a_passwords_file_sets_only_the_hubs_users(tmp_path):
    given = tmp_path / "pw.txt"
    given.write_text("# the class\nstudent1:s3cret:with:colons\n\ninstructor:x\n")
    assert course_hub.read_passwords(given, ["instructor", "student1"]) == {
        "student1": "s3cret:with:colons", "instructor": "x"}
    for line, says in (("root:x\n", "not a user of this hub"), ("grader:x\n", "not a user of this hub"),
                       ("student1\n", "is not NAME:PASSWORD"), ("student1:\n", "is not NAME:PASSWORD")):
        given.write_text(line)
        with pytest.raises(course_hub.HubError, match=says):
            course_hub.read_passwords(given, ["instructor", "student1"])


@pytest.mark.parametrize("bad", ["Root", "-rf", "a b", "ana;rm", "../x"])
def test_user_names_are_plain(bad):
    with pytest.raises(course_hub.HubError, match="not a user name"):
        course_hub.names(f"ana,{bad}")


def test_user_names_are_split_on_commas():
    assert course_hub.names(" ana, ben_2,,eva-x ") == ["ana", "ben_2", "eva-x"]
