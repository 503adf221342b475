"""What the instructor reads after grading: the grading report and the item analysis."""
