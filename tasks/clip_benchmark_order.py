"""Which samples CLIP_benchmark's `cli.py` evaluates from a webdataset, in which order.

cli.py `run` shuffles the stream with `dataset.shuffle(10000, initial=10000,
rng=random.Random(args.seed))` (`--seed` 0) and reads it through
`DataLoader(dataset.batched(args.batch_size), batch_size=None, num_workers=args.num_workers)`
(`--num_workers` 4); zeroshot_classification.py `run_classification` evaluates the first n
samples the loader yields. So four worker processes each read every fourth shard
(webdataset's split_by_worker), each shuffles its own stream with its own copy of
Random(0), cuts it into batches (the last one partial), and the loader takes one batch
from each worker in turn, dropping a worker once it has no more (torch's DataLoader with an
IterableDataset). Every dataset with more than one shard is read in that order, not as one
stream.

RobustVLM's fork runs it with batches of 50 (and asserts so). ΔCLIP's fork
(zw615/Double_Visual_Defense, CLIP_benchmark/clip_benchmark/cli.py) reads the same way but has
RobustVLM's `assert args.batch_size == 50` commented out, and its script
(CLIP_benchmark/scripts/dvd_clip_h14_hf_adv.sh) passes `--batch_size 8`: its workers interleave
batches of 8, so its first 1000 samples are another set, in another order. The two reads are
the two SAMPLE_ORDERS.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from benchutil.errors import BenchError, unknown

SHUFFLE_BUFFER = 10000  # cli.py: dataset.shuffle(10000, initial=10000, rng=random.Random(args.seed))
SHUFFLE_SEED = 0  # cli.py --seed default
# cli.py's DataLoader: --num_workers default 4 (run_benchmark_adv.sh leaves it; dvd_clip_h14_hf_adv.sh
# passes 4). The reference's order, whatever our own --workers or --batch-size say.
REFERENCE_WORKERS = 4
T = TypeVar("T")


@dataclass(frozen=True)
class SampleOrder:
    """One fork's read of a webdataset: the batch size its DataLoader's workers cut their shuffled
    streams into (the rest of the read, shuffle and 4 workers, is common to both forks)."""

    name: str
    batch_size: int
    # CIFAR-10/100 and STL-10 attacked at their own 32 / 96 px, resized inside the model: RobustVLM's
    # cli.py does it; ΔCLIP's has that branch commented out (its images go through the model's transform).
    native_resolution: bool
    reference: str


SAMPLE_ORDERS = {
    "robustvlm": SampleOrder("robustvlm", 50, True,
                             "RobustVLM's CLIP_benchmark: bash/run_benchmark_adv.sh --batch_size 50, and cli.py's "
                             "`assert args.batch_size == 50, \"Otherwise we get different samples\"` (issue #29)"),
    "dvd": SampleOrder("dvd", 8, False,
                       "ΔCLIP's CLIP_benchmark: scripts/dvd_clip_h14_hf_adv.sh --batch_size 8 --n_samples 1000, "
                       "cli.py's batch-50 assert commented out"),
}
DEFAULT_SAMPLE_ORDER = "robustvlm"
REFERENCE_BATCH_SIZE = SAMPLE_ORDERS[DEFAULT_SAMPLE_ORDER].batch_size


def sample_order(name: str) -> SampleOrder:
    """The named order (bench run --sample-order), or one line naming the closest."""
    if name not in SAMPLE_ORDERS:
        raise unknown("sample order", name, list(SAMPLE_ORDERS), " (--sample-order)")
    return SAMPLE_ORDERS[name]


def not_a_webdataset(order: str, task: str) -> BenchError:
    """The one-line refusal of a sample order other than the default for a task that reads no
    CLIP_benchmark webdataset."""
    return BenchError(f"--sample-order {order} picks samples of CLIP_benchmark webdatasets; {task!r} is not one: "
                      "leave --sample-order out for it, or run it apart")


def read_order(batch_size: int) -> dict[str, int]:
    """How a selection was read, stored in selection.json: a cache made another way (the single
    stream of earlier versions, another batch size) is not this selection and is made again."""
    return {"buffer": SHUFFLE_BUFFER, "initial": SHUFFLE_BUFFER, "seed": SHUFFLE_SEED,
            "workers": REFERENCE_WORKERS, "batch_size": batch_size}


def worker_shards(nshards: int, workers: int = REFERENCE_WORKERS) -> list[list[int]]:
    """The shards each DataLoader worker reads: webdataset's split_by_worker gives worker w the
    shards w, w + workers, ... (an islice of the shard list); a worker beyond the last shard gets none."""
    return [list(range(w, nshards, workers)) for w in range(workers)]


def shuffled_positions(length: int) -> Iterator[int]:
    """The order in which cli.py's shuffle emits a stream of `length` samples, as positions.

    webdataset's shuffle itself runs on the positions 0..length-1 with a fresh Random(seed),
    as each worker process starts from its own copy of the one in cli.py: its draws depend
    only on how full its buffer is, so the positions come out as the samples would."""
    import webdataset

    shuffle = webdataset.shuffle(SHUFFLE_BUFFER, initial=SHUFFLE_BUFFER, rng=random.Random(SHUFFLE_SEED))
    return iter(shuffle(iter(range(length))))


def _shuffled_stream(stream: list[T]) -> Iterator[T]:
    """One worker's samples in the order its shuffle emits them."""
    return (stream[p] for p in shuffled_positions(len(stream)))


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive batches of `size`, the last one partial (webdataset's batched, partial=True)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def round_robin(streams: list[Iterator[T]]) -> Iterator[T]:
    """One item from each stream in turn, a stream dropped once it ends: how torch's DataLoader
    interleaves the batches of its workers over an IterableDataset (tasks go to the workers in
    turn; a worker that reports its end gets no more, the others keep their turns)."""
    active = list(streams)
    while active:
        for stream in list(active):
            item = next(stream, None)
            if item is None:
                active.remove(stream)
            else:
                yield item


def reference_order(shard_sizes: list[int], n: int, batch_size: int = REFERENCE_BATCH_SIZE) -> list[tuple[int, int]]:
    """(shard, index in the shard) of the first n samples cli.py evaluates, in its order, for a
    test split whose shards hold shard_sizes samples: each worker's shards in turn, shuffled,
    in batches of batch_size, the workers' batches interleaved."""
    streams = [batches(_shuffled_stream([(shard, k) for shard in shards for k in range(shard_sizes[shard])]),
                       batch_size) for shards in worker_shards(len(shard_sizes))]
    order: list[tuple[int, int]] = []
    for batch in round_robin(streams):
        if len(order) >= n:
            break
        order += batch
    return order[:n]
