"""One submission graded from bytes, anywhere: the bundles and `grade()`."""
