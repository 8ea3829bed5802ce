"""The command line: argument parsing and the command bodies; the only layer that knows argparse or
formats for a terminal. May import every other part of bench (report, train, run, suites, models).
"""
from bench.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
