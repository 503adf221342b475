"""Grading kernels: the sandbox, the zygote that forks them, each worker's spare kernel. No nbgrader here."""
