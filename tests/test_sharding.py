"""Sharded evaluation: N processes (--shard, torchrun with gloo's env, a Slurm array) write
the records one process would; a killed shard resumes alone; concurrent writers never crash."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.run.progress import Progress
from bench.run.sharding import Shard, detect_shard, parse_shard
from bench.run.store import read_run_records
from benchutil.errors import BenchError
from tests import bench_fixtures as fx

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return fx.folder_and_checkpoint(tmp_path_factory.mktemp("shards"), per_class=5)


def _argv(world, out: Path, *extra: str) -> list[str]:
    data, model = world
    return ["run", "--encoder", str(model), "--task", f"folder:{data}", "--out", str(out), "--attack", "aa",
            "--eps", "0,8/255", "--steps", "4", "--batch-size", "3", *extra]


def _bench(*argv: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *argv], env=env or ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _runs(out: Path) -> dict[str, list[dict]]:
    return {p.name: sorted(read_run_records(p), key=lambda r: r["id"]) for p in sorted(out.iterdir()) if p.is_dir()}


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-process")
    assert main(_argv(world, out)) == 0
    return _runs(out)


@pytest.mark.long
def test_two_shards_write_what_one_process_writes(world, reference, tmp_path):
    procs = [_bench(*_argv(world, tmp_path, "--shard", f"{i}/2")) for i in range(2)]  # at the same time
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()
    assert _runs(tmp_path) == reference
    files = sorted(f.name for f in next(tmp_path.iterdir()).glob("records*.jsonl"))
    assert files == ["records.shard-0-of-2.jsonl", "records.shard-1-of-2.jsonl"]


@pytest.mark.long
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun is not installed")
def test_torchrun_ranks_are_shards(world, reference, tmp_path):
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--nproc_per_node=2", "--master_port=29533", "-m", "bench", *_argv(world, tmp_path)]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert _runs(tmp_path) == reference


@pytest.mark.long
def test_a_killed_shard_resumes_alone(world, reference, tmp_path):
    first = _bench(*_argv(world, tmp_path, "--shard", "0/2"))
    assert first.wait(timeout=600) == 0
    killed = _bench(*_argv(world, tmp_path, "--shard", "1/2", "--batch-size", "3"))
    attacked = None
    while attacked is None or not (attacked / "records.shard-1-of-2.jsonl").exists():
        if killed.poll() is not None:
            break
        attacked = next((p for p in tmp_path.iterdir() if "8-255" in p.name), None)
    fx.kill_when_exists(killed, (attacked or tmp_path) / "records.shard-1-of-2.jsonl")
    again = _bench(*_argv(world, tmp_path, "--shard", "1/2"))
    assert again.wait(timeout=600) == 0, again.stderr.read()
    assert _runs(tmp_path) == reference


def test_the_leaderboard_reads_sharded_runs(world, reference, tmp_path, capsys):
    for i in range(3):
        assert main(_argv(world, tmp_path, "--shard", f"{i}/3")) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path), "--format", "csv"]) == 0
    sharded = capsys.readouterr().out
    one = tmp_path.parent / "one"
    assert main(_argv(world, one)) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(one), "--format", "csv"]) == 0
    assert capsys.readouterr().out == sharded


def test_the_shard_comes_from_the_flag_torchrun_or_slurm():
    assert detect_shard("1/4", {}) == Shard(1, 4)
    assert detect_shard(None, {"RANK": "3", "WORLD_SIZE": "8"}) == Shard(3, 8)
    assert detect_shard(None, {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8",
                               "SLURM_ARRAY_TASK_MIN": "1"}) == Shard(4, 8)
    assert detect_shard(None, {}) == Shard(0, 1)
    assert [Shard(1, 3).takes(k) for k in range(6)] == [False, True, False, False, True, False]
    for bad in ("2/2", "x/2", "1", "-1/2"):
        with pytest.raises(BenchError, match="--shard"):
            parse_shard(bad)


def test_two_processes_writing_one_file_atomically_never_crash(tmp_path):
    script = ("import sys; from pathlib import Path; from benchutil.fileio import write_json_atomic\n"
              "for k in range(300): write_json_atomic(Path(sys.argv[1]), {'writer': sys.argv[2], 'k': k})\n")
    target = tmp_path / "cache.json"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(target), w], env=ENV, stderr=subprocess.PIPE,
                              text=True) for w in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert json.loads(target.read_text())["k"] == 299
    assert [p.name for p in tmp_path.iterdir()] == ["cache.json"]  # no temporary left behind


def test_progress_without_a_terminal_is_lines_with_rate_and_eta():
    stream = io.StringIO()
    progress = Progress("clip tiny-shape aa 4/255", total=10, every_s=0.0, stream=stream)
    progress.update(4)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines and all("clip tiny-shape aa 4/255: " in line and "samples/s, ETA" in line for line in lines)
    assert "4/10 samples" in lines[-1]


@pytest.mark.parametrize("task", ["tiny-colour", pytest.param("tiny-captions", marks=pytest.mark.long)])
def test_decoding_in_worker_processes_changes_no_record(tmp_path, task):
    common = ["run", "--encoder", "clip", "--task", task, "--eps", "2/255", "--attack", "apgd", "--steps", "2",
              "--n-samples", "6", "--batch-size", "2"]
    assert main([*common, "--workers", "0", "--out", str(tmp_path / "main")]) == 0
    assert main([*common, "--workers", "2", "--out", str(tmp_path / "workers")]) == 0
    assert _runs(tmp_path / "main") == _runs(tmp_path / "workers")
