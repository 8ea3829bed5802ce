"""One run from plan to records: the runner, the store and its validated readers, sharding, devices,
progress, batch loading, eps parsing and attack names, what a run records about its environment.
May import bench.suites and the model packages; never bench.report, bench.train or bench.cli.
"""
