"""hub/: the two JupyterHub configurations, read as JupyterHub reads them (fast; the hub itself
runs in tests/journeys/test_hub.py)."""
from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from tests.support.course import ROOT

HUB = ROOT / "hub"
SETTINGS = {
    "state": "/srv/h/state", "ip": "127.0.0.1", "port": 8000, "hub_port": 8081, "proxy_api_port": 8001,
    "service_port": 10101, "service": "formgrader", "instructors": ["instructor"], "grader": "grader",
    "students": ["student1", "student2"], "course": "/home/grader/connection-pooling",
    "exchange": "/srv/nbgrader/exchange", "users_env": "/srv/h/envs/users", "course_env": "/srv/h/envs/course",
    "proxy": "/repo/hub/node_modules/.bin/configurable-http-proxy",
}


def load(path, env: dict | None = None, monkeypatch=None) -> Config:
    config = Config()
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    exec(compile(path.read_text(), str(path), "exec"), {"get_config": lambda: config, "__file__": str(path)})
    return config


@pytest.fixture
def ours(tmp_path, monkeypatch):
    settings = tmp_path / "hub-settings.json"
    settings.write_text(json.dumps(SETTINGS))
    return load(HUB / "jupyterhub_config.py", {"COURSE_HUB_SETTINGS": str(settings)}, monkeypatch)


@pytest.fixture
def tljh():
    return load(HUB / "tljh_jupyterhub_config.py")


def test_the_hub_listens_on_loopback_and_logs_in_local_users(ours):
    assert ours.JupyterHub.bind_url == "http://127.0.0.1:8000/"
    assert ours.JupyterHub.hub_ip == "127.0.0.1"
    assert ours.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert ours.JupyterHub.authenticator_class == "pam"
    assert ours.Authenticator.admin_users == {"instructor"}
    assert ours.Authenticator.allowed_users == {"instructor", "student1", "student2"}, "the grader account logs in"
    assert ours.Spawner.cmd == ["/srv/h/envs/users/bin/jupyterhub-singleuser"], "students' servers: the kernel side"


@pytest.mark.parametrize("config", ["ours", "tljh"])
def test_jupyterhubs_security_headers_are_left_alone(config, request):
    """No Content-Security-Policy of our own anywhere: JupyterHub's frame-ancestors 'none' stays
    (jupyter/nbgrader#1947: the formgrader is opened as a page, never framed)."""
    loaded = request.getfixturevalue(config)
    assert "tornado_settings" not in loaded.JupyterHub and "tornado_settings" not in loaded.ServerApp
    for args in [loaded.Spawner.args, *(service["command"] for service in loaded.JupyterHub.services)]:
        assert not [arg for arg in args if "tornado_settings" in arg or "Content-Security-Policy" in arg], args


def test_the_tljh_config_has_our_settings(ours, tljh):
    """The same course server, group, role, announcements and user-server settings; only paths and
    what tljh-config sets (login, admins) differ."""
    (mine,), (theirs,) = ours.JupyterHub.services, tljh.JupyterHub.services
    paths = {"command", "url", "cwd", "environment"}
    assert {k: v for k, v in mine.items() if k not in paths} == {k: v for k, v in theirs.items() if k not in paths}
    assert mine["command"][1:] == theirs["command"][1:], "the course server's options"
    assert mine["environment"].keys() == theirs["environment"].keys()
    assert ours.JupyterHub.load_groups == tljh.JupyterHub.load_groups
    assert ours.JupyterHub.load_roles == tljh.JupyterHub.load_roles
    assert ours.JupyterHub.template_vars["announcement_home"] == tljh.JupyterHub.template_vars["announcement_home"]
    assert (ours.Spawner.default_url, ours.Spawner.args) == (tljh.Spawner.default_url, tljh.Spawner.args)


def test_the_tljh_config_marks_what_an_instructor_changes():
    text = (HUB / "tljh_jupyterhub_config.py").read_text()
    assert "UNTESTED on a real TLJH server" in text
    for value in ('"instructors"', '"grader"', '"course"', '"exchange"', '"course_env"'):
        line = next(line for line in text.splitlines() if line.strip().startswith(value))
        assert "# CHANGE" in line, f"the TLJH config does not mark {value} as a value to change"
