"""What reads finished runs: the leaderboard and its exports, intervals and paired statistics, plots,
the website, the gradient-masking audit. May import bench.run (the store's readers), bench.suites and
the model packages; never bench.cli.
"""
