"""bench train: the tiny CLIP, tiny-llava and the robust fine-tunes (FARE, TeCoA, Sim-CLIP), on CPU or DDP.
May import bench.run, bench.suites and the model packages; never bench.report or bench.cli.
"""
