"""Graded tests: exercises/schedules.py (warmup_cosine)."""

import pytest

from minijepa.schedules import warmup_cosine as ref_warmup_cosine

from .harness import assert_number, fail


@pytest.mark.exercise("schedules", "warmup_cosine")
class TestWarmupCosine:
    @pytest.mark.points(2)
    def test_matches_reference_along_training(self, fn):
        """equal to the reference at every step of a run with warm-up"""
        for step in range(0, 101):
            expected = ref_warmup_cosine(step, 100, 10, 2e-4, 1e-3, 1e-6)
            assert_number(fn(step, 100, 10, 2e-4, 1e-3, 1e-6), expected, f"the rate at step {step}")

    @pytest.mark.points(1)
    def test_warmup_end_points(self, fn):
        """start at step 0, peak at the end of the warm-up; a Python float"""
        value = fn(0, 50, 5, 0.1, 1.0, 0.01)
        if not isinstance(value, float):
            fail(f"warmup_cosine should return a Python float, got {type(value).__name__}")
        assert_number(value, 0.1, "the rate at step 0")
        assert_number(fn(5, 50, 5, 0.1, 1.0, 0.01), 1.0, "the rate at the end of the warm-up")

    @pytest.mark.points(1)
    def test_final_value_after_training(self, fn):
        """final at total_steps and after"""
        for step in (50, 51, 500):
            assert_number(fn(step, 50, 5, 0.1, 1.0, 0.01), 0.01, f"the rate at step {step} of 50")

    @pytest.mark.points(1)
    def test_without_warmup(self, fn):
        """warmup_steps = 0 starts at the peak and follows the cosine"""
        for step in (0, 1, 7, 20):
            assert_number(fn(step, 20, 0, 0.5, 1.0, 0.0), ref_warmup_cosine(step, 20, 0, 0.5, 1.0, 0.0), f"the rate at step {step}")

    @pytest.mark.points(1)
    def test_warmup_as_long_as_training(self, fn):
        """warmup_steps = total_steps warms up, then stays at the peak"""
        for step in (0, 4, 8, 9, 10, 30):
            assert_number(fn(step, 10, 10, 0.0, 2.0, 0.1), ref_warmup_cosine(step, 10, 10, 0.0, 2.0, 0.1), f"the rate at step {step}")
