"""Prefect flows wiring the tasks into the self-evolution rounds (see README.md)."""
