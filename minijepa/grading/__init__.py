"""The grader, one module per stage; ``python -m minijepa.grade`` is its command line.

rules (what an exercise file may contain; shared with the harness) -> submissions (reading folders and
zips) -> sandbox (a run's folder, process and limits) -> catalog (the graded tests) -> runs (grading one
submission) -> report (tables, CSV, JSON, Gradescope) -> cli. Arrows point one way.
"""
