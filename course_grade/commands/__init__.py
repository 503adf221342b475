"""The `course-grade` commands: each has `add_arguments(parser)` and `main(args)`."""
