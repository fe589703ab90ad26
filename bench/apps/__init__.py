"""Baseline applications the benchmark compares ours with."""
