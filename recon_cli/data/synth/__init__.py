"""Procedural generator (work in progress)."""
