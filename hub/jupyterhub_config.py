"""JupyterHub for the course on one machine. `make hub` (hub/course_hub.py) makes the users, the
environments and the course, writes ROOT/state/hub-settings.json and starts JupyterHub with this file.

- Listens on 127.0.0.1 only (a local course server; put a TLS reverse proxy in front to open it).
- Users log in with their local Unix accounts and passwords (PAM).
- Everyone's own server runs JupyterLab from ROOT/envs/users: the kernel side (autograder/) and
  nbgrader's student extensions (Assignments: fetch, submit, fetch feedback) only.
- The course server, a hub-managed service at /services/formgrader/, is a Jupyter server run as
  the grader account in the course folder from ROOT/envs/course (course_grade too): the
  formgrader at /services/formgrader/formgrader, and a terminal for `nbgrader collect` and
  `course-grade grade`. Only the instructors may open it.
- JupyterHub's security headers are left as they are: the formgrader is opened as a page of its
  own, never framed (nbgrader's Formgrader panel in JupyterLab frames it, which JupyterHub >= 4.1
  forbids: jupyter/nbgrader#1870, #1947).
"""
import json
import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by JupyterHub

_settings_file = os.environ.get("COURSE_HUB_SETTINGS", "/srv/connection-pooling-hub/state/hub-settings.json")
if not os.path.exists(_settings_file):
    raise SystemExit(f"{_settings_file} is missing: start the hub with `sudo make hub` (hub/course_hub.py writes it)")
hub = json.loads(Path(_settings_file).read_text())
STATE = Path(hub["state"])  # root's alone (0700)
USERS_BIN = Path(hub["users_env"]) / "bin"
COURSE_BIN = Path(hub["course_env"]) / "bin"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# A terminal runs bash as started, not as a login shell: a login's /etc/profile would put the
# system's PATH first, and nbgrader and course-grade would not be found.
TERMINALS = """--ServerApp.terminado_settings=shell_command=["/bin/bash"]"""

# --- where it listens: this machine only --------------------------------------------------
c.JupyterHub.bind_url = f"http://{hub['ip']}:{hub['port']}/"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = hub["hub_port"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [hub["proxy"]]  # hub/node_modules, pinned in hub/package-lock.json
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

# --- who logs in ---------------------------------------------------------------------------
# Local Unix accounts and their passwords, through PAM: right for one machine whose users
# hub/course_hub.py makes. A university deployment logs people in with its single sign-on
# instead, keeping the rest of this file: OAuthenticator (GenericOAuthenticator for OpenID
# Connect, or AzureAdOAuthenticator, GoogleOAuthenticator) or, from the LMS, ltiauthenticator's
# LTI13Authenticator; on Kubernetes users are not Unix accounts, so course_hub.py's step 1 goes.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(hub["instructors"]) | set(hub["students"])
c.Authenticator.admin_users = set(hub["instructors"])
c.LocalAuthenticator.create_system_users = False  # course_hub.py makes them

# Our words on JupyterHub's pages (its templates are its own): where each kind of user goes.
c.JupyterHub.template_vars = {
    "announcement_login": "Log in with your account on this machine: your instructor gave you its password.",
    "announcement_home": (
        "Students: start your server, then open the lesson from <b>Nbgrader &rarr; Assignment List</b> "
        "(Fetch, then Submit when you are done). Instructors: the course server is at "
        f'<a class="alert-link" href="/services/{hub["service"]}/formgrader">the formgrader</a>.'),
}

# --- everyone's own server: the kernel side only --------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(USERS_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.args = [TERMINALS]
c.Spawner.notebook_dir = "~"
# a login's PATH (the hub's own, root's, is not theirs), with the environment's tools first
c.Spawner.env_keep = ["LANG", "LC_ALL", "TZ"]
c.Spawner.environment = {"PATH": f"{USERS_BIN}:{SYSTEM_PATH}"}
c.Spawner.http_timeout = 120  # a first JupyterLab start on a busy 2-core machine
c.Spawner.start_timeout = 120

# --- the course server: the formgrader, as a hub-managed service ----------------------------
# nbgrader's "one class, multiple graders" set-up: a Jupyter server run as the grader account in
# the course folder, opened by the members of the formgraders group (the instructors).
c.JupyterHub.services = [{
    "name": hub["service"],
    "url": f"http://127.0.0.1:{hub['service_port']}",
    "command": [str(COURSE_BIN / "jupyterhub-singleuser"), "--ServerApp.default_url=/formgrader", TERMINALS],
    "user": hub["grader"],
    "cwd": hub["course"],
    "environment": {"PATH": f"{COURSE_BIN}:{SYSTEM_PATH}", "NBGRADER_EXCHANGE": hub["exchange"]},
    "oauth_no_confirm": True,  # part of the course, not a third party: no "authorize" page
    "timeout": 120,
}]
c.JupyterHub.load_groups = {"formgraders": {"users": hub["instructors"]}}
c.JupyterHub.load_roles = [{
    "name": "formgraders",
    "description": "open the course server (formgrader)",
    "groups": ["formgraders"],
    "scopes": [f"access:services!service={hub['service']}"],
}]
