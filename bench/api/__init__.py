"""The evaluation API: the settings of a run (their flags, suite files, keyword arguments), the one
evaluation path every door leads to, and `bench.benchmark` for models outside the zoo."""
