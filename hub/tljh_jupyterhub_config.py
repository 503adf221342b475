"""The course on The Littlest JupyterHub (TLJH): the settings of hub/jupyterhub_config.py for a TLJH
server. UNTESTED on a real TLJH server: only `make hub`'s hub (hub/jupyterhub_config.py) is tested
here (tests/journeys/test_hub.py); tests/hub/test_configs.py checks that this file sets the same
service, group, role, spawner and terminal settings. Lines an instructor changes say CHANGE.

Install, as root on the TLJH server, from a clone of this repository (what hub/course_hub.py does):
1. the students' side, into TLJH's user environment: the pins, then the kernel side only
       python3 tools/pins.py requirements > /tmp/pins.txt
       /opt/tljh/user/bin/pip install -r /tmp/pins.txt
       /opt/tljh/user/bin/pip install --no-deps tools/kernel-package
       /opt/tljh/user/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader
       /opt/tljh/user/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.course_list
       /opt/tljh/user/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader \
           @jupyter/nbgrader:course-list @jupyter/nbgrader:create-assignment
   The pins hold jupyterhub 6.1.1: if TLJH's hub runs another major version, install that
   version of jupyterhub into both environments after the pins (jupyterhub-singleuser must match it).
2. the course server's environment: python3.11 -m venv /opt/course-env, then the pins,
   `/opt/course-env/bin/pip install --no-deps .` and (its panel would be blank: it frames the page)
   `/opt/course-env/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader`
3. the grader account and the course: `useradd -m grader`, `git clone` this repository into
   /home/grader/connection-pooling (owned by grader, mode 0700), and as grader there
   `/opt/course-env/bin/nbgrader generate_assignment connection-pooling --force`
4. the exchange and the students' config, as root in the course folder:
       /opt/course-env/bin/course-grade setup exchange
       /opt/course-env/bin/course-grade setup students --write /opt/tljh/user/etc/jupyter/nbgrader_config.py
5. this file: cp hub/tljh_jupyterhub_config.py /opt/tljh/config/jupyterhub_config.d/course.py,
   the people: `tljh-config add-item users.admin instructor` (TLJH makes each user the Unix
   account jupyter-NAME), how they log in: `tljh-config set auth.type ...` (your university's
   OAuthenticator, or ltiauthenticator's LTI13Authenticator from the LMS), then
   `tljh-config reload hub`.
"""

c = get_config()  # noqa: F821 - provided by JupyterHub

COURSE_SETTINGS = {
    "service": "formgrader",
    "instructors": ["instructor"],  # CHANGE: hub user names of the instructors (they open the course server)
    "grader": "grader",  # CHANGE: the Unix account that owns the course and runs the course server
    "course": "/home/grader/connection-pooling",  # CHANGE: the course folder (a clone of this repository)
    "exchange": "/srv/nbgrader/exchange",  # CHANGE with the course's nbgrader_config.py, if you move it
    "course_env": "/opt/course-env",  # CHANGE: where step 2 made the course server's environment
    "service_port": 10101,  # CHANGE if another service on this machine uses the port
}
USERS_BIN = "/opt/tljh/user/bin"
COURSE_BIN = f"{COURSE_SETTINGS['course_env']}/bin"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
TERMINALS = """--ServerApp.terminado_settings=shell_command=["/bin/bash"]"""  # keeps the PATH below

# Who logs in, and who is an admin: tljh-config (auth.type, users.admin), not this file.

c.JupyterHub.template_vars = {
    "announcement_login": "Log in with your course account.",  # CHANGE: how your users log in
    "announcement_home": (
        "Students: start your server, then open the lesson from <b>Nbgrader &rarr; Assignment List</b> "
        "(Fetch, then Submit when you are done). Instructors: the course server is at "
        f'<a class="alert-link" href="/services/{COURSE_SETTINGS["service"]}/formgrader">the formgrader</a>.'),
}

# Everyone's own server: TLJH's user environment, with the kernel side only.
c.Spawner.default_url = "/lab"
c.Spawner.args = [TERMINALS]
c.Spawner.environment = {"PATH": f"{USERS_BIN}:{SYSTEM_PATH}"}

# The course server: the formgrader, as a hub-managed service (as in hub/jupyterhub_config.py).
c.JupyterHub.services = [{
    "name": COURSE_SETTINGS["service"],
    "url": f"http://127.0.0.1:{COURSE_SETTINGS['service_port']}",
    "command": [f"{COURSE_BIN}/jupyterhub-singleuser", "--ServerApp.default_url=/formgrader", TERMINALS],
    "user": COURSE_SETTINGS["grader"],
    "cwd": COURSE_SETTINGS["course"],
    "environment": {"PATH": f"{COURSE_BIN}:{SYSTEM_PATH}", "NBGRADER_EXCHANGE": COURSE_SETTINGS["exchange"]},
    "oauth_no_confirm": True,
    "timeout": 120,
}]
c.JupyterHub.load_groups = {"formgraders": {"users": COURSE_SETTINGS["instructors"]}}
c.JupyterHub.load_roles = [{
    "name": "formgraders",
    "description": "open the course server (formgrader)",
    "groups": ["formgraders"],
    "scopes": [f"access:services!service={COURSE_SETTINGS['service']}"],
}]
