"""nbgrader's plugins: everything nbgrader_config.py names, one per file, named after its class."""
