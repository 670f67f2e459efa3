"""Judging predictions: the HTML report and the paired comparison of two models."""
