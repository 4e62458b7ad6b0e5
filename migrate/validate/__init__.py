"""Validation of the new cluster before any traffic moves: built-in checks, response diff, pytest suites."""
