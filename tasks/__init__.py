"""Prefect tasks: thin wrappers around the rstar library (see README.md)."""
