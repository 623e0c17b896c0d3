"""Graded tests of the course exercises (see docs/exercises.md); the grader copies this folder as is."""
