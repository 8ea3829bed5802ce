"""Dependency-free helpers every layer may import: user-facing errors, registries, atomic writes.

A leaf package: it imports nothing of attacks/, tasks/ or bench/, so tasks/ (which sits
below bench/) can use them without an upward import.
"""
