"""The judge: each build step's verdict, computed outside the process the student's code controls.

`nbgrader_ext/judge_build_steps.py` calls it after the notebook has run. It runs the
submission's cells again in a fresh sandboxed kernel of its own (`session`), serves the
notebook's app there as a deployment does (uvicorn on a Unix socket, lifespan on), and
decides from what it sees from outside (`observe`, `decide`): HTTP answers, rows it writes
into the database itself (`database`), and the server's open connections to the database
file, read from /proc (`watch`). The files and sockets it shares with the sandbox are opened
without following a link (`folder`).
"""
