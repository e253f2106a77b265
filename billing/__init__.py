"""Billing rules and runs: plain functions, no Flask or Redis."""
