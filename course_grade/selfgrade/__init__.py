"""A self-learner's grading of their own notebook: the client and the background service."""
