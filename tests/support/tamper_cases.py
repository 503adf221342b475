"""Cells for the tampering analysis: attacks (each must be flagged) and honest look-alikes
(each must not be). The honest ones are also graded end to end (tests/support/submissions.py,
HONEST_LOOKALIKES) and must score full marks."""
from __future__ import annotations

SOLUTION_URL = 'DATABASE_URL = "sqlite+aiosqlite:///./test.db"'

# category -> snippets a student cell might hold; every one must be flagged
ATTACKS = {
    "run_time_names_and_the_event_loop": [  # found by the red-team gallery (tests/support/red_team.py)
        "import logging, string\nloaded = string.Formatter().get_field('0.sys.modules', (logging,), {})[0]",
        "import string\nf = string.Formatter()",
        "import asyncio\n_p = await asyncio.get_running_loop().subprocess_exec(asyncio.SubprocessProtocol, 'python3')",
        "import asyncio\nasyncio.get_running_loop().subprocess_shell(asyncio.SubprocessProtocol, 'sleep 9')",
        "import asyncio\nasyncio.get_running_loop().add_signal_handler(2, print)",
    ],
    "imports": [
        "import autograder.checks\nautograder.checks.step1_database_url = lambda ns: None",
        "from autograder import checks",
        "import subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)",
        "from subprocess import Popen",
        "import importlib\nimportlib.import_module('autograder.checks')",
        "import builtins\nbuiltins.print = lambda *a, **k: None",
        "import gc\nprint(gc.get_objects())",
        "import ctypes",
        "import inspect\nframe = inspect.currentframe()",
        "import shutil\nshutil.rmtree('x')",
        "import socket\nsocket.create_connection(('example.com', 80))",
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)",
        "import multiprocessing",
        "import threading\nthreading.Thread(target=print).start()",
        "import glob\nglob.glob('../../**/*.ipynb', recursive=True)",
        "import types\nfake = types.ModuleType('x')",
        "from . import checks",
        "import IPython\nIPython.get_ipython()",
    ],
    "dunders": [
        "print(step.__globals__)",
        "f = (lambda: 0).__code__",
        "x = ().__class__.__base__.__subclasses__()",
        "__builtins__['print'] = None",
        "__builtins__.print = None",
        "m = __import__('autograder.checks')",
        "d = app.__dict__",
        "__import__ = None",
        "getattr(app, '__dict__')",
        "from sqlalchemy import __builtins__",
    ],
    "introspection": [
        "getattr(__import__('autogr' + 'ader.checks'), 'step1_' + 'database_url')",
        "import sqlalchemy\nsetattr(sqlalchemy, 'create_' + 'engine', None)",
        "delattr(app, name)",
        "g = getattr\ng(app, 'routes')",
        "globals()['DATABASE_URL'] = 'x'",
        "vars(app)",
        "print(locals())",
        "eval('1 + 1')",
        "exec('x = 1')",
        "code = compile('x = 1', '<s>', 'exec')",
        "breakpoint()",
        "run = eval\nrun('1')",
        "def globals():\n    return {'DATABASE_URL': 'sqlite+aiosqlite:///./test.db'}",
        "print = lambda *args, **kwargs: None",
    ],
    "ipython": [
        "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
        "ip = get_ipython()\nip.events.register('pre_run_cell', lambda info: None)",
        "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)",
        "import sys\nsys.excepthook = lambda *a: None",
        "%load_ext autoreload",
        "!rm -f test.db",
        "files = !ls ../../..",
        "%%bash\nrm -rf ..",
        "%run ../../../source/connection-pooling/solution.py",
        "shell = get_ipython()",
        "print(In[-1])",
        "print(Out)",
        "class Quiet(Exception):\n    def _render_traceback_(self):\n        return []",
        "%time import subprocess",
    ],
    "interpreter": [
        "import sys\nsys.modules['autograder.checks'] = None",
        "import sys\nsys.settrace(lambda *a: None)",
        "import sys\nsys.setprofile(lambda *a: None)",
        "import sys\nframe = sys._getframe(1)",
        "import sys\nsys.path.insert(0, '.')",
        "import sys\nsys.meta_path.insert(0, None)",
        "import fastapi\nfastapi.routing.inspect.currentframe().f_back.f_globals['x'] = 1",
        "import sqlalchemy\nsqlalchemy.util.compat.sys.modules.clear()",
        "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_globals.clear()",
        "import sys\nstderr = sys\nstderr.modules.pop('x')",
        "import sys as s\ns.modules.pop('autograder.checks')",
        "import os\nos.environ['X'] = '1'\nimport sys\nsys.stderr = None",
        "import sqlalchemy\nsqlalchemy.create_engine = None",
    ],
    "files": [
        "open('../../../gradebook.db', 'wb').write(b'')",
        "open('/etc/passwd').read()",
        "open('~/.ssh/id_rsa')",
        "open('quiz_answers.json', 'w').write('{}')",
        "open('quiz_' + 'answers.json', 'w')",
        "open(f'{name}.ipynb')",
        "open('connection-pooling.ipynb').read()",
        "from pathlib import Path\nPath('../../../source').iterdir()",
        "from pathlib import Path\nPath('test.db').resolve().parent.parent",
        "from pathlib import Path\nPath.home()",
        "from pathlib import Path\nPath(name).write_text('x')",
        "import sqlite3\nsqlite3.connect('../../../gradebook.db')",
        "import os\nos.remove('test.db')",
        "import os\nos.unlink('test.db')",
        "import os\nos.rename('a', 'b')",
        "import os\nos.replace('a', 'b')",
        "import os\nos.chdir('..')",
        "import os\nos.system('sleep 100 &')",
        "import os\nos.popen('ls')",
        "import os\nos.kill(1, 9)",
        "import os\nos._exit(1)",
        "import os\nos.listdir('..')",
        "from os import system\nsystem('ls')",
        "from os import *",
        "import asyncio\nasyncio.create_subprocess_exec('sleep', '100')",
        "import asyncio\nasyncio.all_tasks()",
        "reader = open\nreader('/etc/passwd')",
    ],
}

# honest cells that merely use such words or calls: never flagged, full marks
HONEST = {
    "re_compile": 'import re\n\nPATTERN = re.compile(r"^sqlite\\+aiosqlite:///")\n' + SOLUTION_URL
                  + '\nassert PATTERN.match(DATABASE_URL)',
    "comment_mentions_grader": "# the autograder and the gradebook check this; sys.modules, eval(), exec() aside\n"
                               "POOL_SIZE = 5  # checks.step2_pool_size reads it",
    "statement_compile": 'from sqlalchemy import text\n\nprint(text("SELECT 1").compile())\n' + SOLUTION_URL,
    "dict_named_checks": 'checks = {"url": "sqlite+aiosqlite:///./test.db", "size": 5}\n'
                         'DATABASE_URL = checks["url"]',
    "fstring_sys_modules": 'note = f"sys.modules has {2} entries; __import__ and get_ipython are words"\n'
                           'print(note)\n' + SOLUTION_URL,
    "environ_default": 'import os\n\nDATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./test.db")',
    "getenv_default": 'from os import getenv\n\nPOOL_SIZE = int(getenv("POOL_SIZE", "5"))',
    "path_in_url": 'from pathlib import Path\n\nDB = Path("test.db")\nDATABASE_URL = f"sqlite+aiosqlite:///./{DB}"',
    "sys_stderr_version": 'import sys\n\nprint("python", sys.version_info[:2], file=sys.stdout)\nPOOL_SIZE = 5',
    "type_name": 'POOL_SIZE = 5\nprint(type(POOL_SIZE).__name__, POOL_SIZE.__class__.__name__)',
    "method_named_eval": 'class Model:\n    def eval(self):\n        return self\n\n    def compile(self):\n'
                         '        return "SELECT 1"\n\n\nModel().eval().compile()\nPOOL_SIZE = 5',
    "literal_getattr": 'import sqlalchemy\n\nprint(getattr(sqlalchemy, "__version__"), sqlalchemy.__version__)\n'
                       'POOL_SIZE = 5',
    "logging_name": 'import logging\n\nlog = logging.getLogger(__name__)\nlog.info("pool of %d", 5)\nPOOL_SIZE = 5',
    "time_magic": "%time POOL_SIZE = 5",
    "help_on_a_name": "POOL_SIZE = 5\nPOOL_SIZE?",
    "decimal_and_dataclass": 'from dataclasses import dataclass\nfrom decimal import Decimal\n\n\n@dataclass\n'
                             'class Setting:\n    size: int\n    price: Decimal = Decimal("4.50")\n\n\n'
                             'POOL_SIZE = Setting(5).size',
    "sqlalchemy_inspect_and_event": 'from sqlalchemy import event, inspect\nfrom sqlalchemy.ext.asyncio import '
                                    'create_async_engine\n\nengine = create_async_engine(DATABASE_URL, '
                                    'pool_size=POOL_SIZE)\ncheckouts = []\nevent.listen(engine.sync_engine, '
                                    '"checkout", lambda *args: checkouts.append(1))\nprint(callable(inspect))',
    "sqlite_peek": 'import sqlite3\n\nwith sqlite3.connect("test.db") as con:\n'
                   '    print(con.execute("SELECT count(*) FROM items").fetchone())\n' + SOLUTION_URL,
    "super_init": 'class Size(int):\n    def __init__(self, value):\n        super().__init__()\n\n\n'
                  'POOL_SIZE = 5\nprint(Size(5))',
}
