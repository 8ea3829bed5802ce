"""Bad input: one line on stderr, exit code 2, no traceback, nothing written."""
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli.main import main
from tests import bench_fixtures as fx

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data, model = fx.folder_and_checkpoint(root, per_class=2)
    (root / "empty").mkdir()
    (root / "empty" / "a_class").mkdir()
    corrupt = root / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00not a checkpoint")
    return root, data, model


def _run(world, out, **overrides):
    root, data, model = world
    args = {"--encoder": str(model), "--task": f"folder:{data}", "--out": str(out), "--steps": "2"}
    args.update(overrides)
    return main(["run", *(f"{k}={v}" for k, v in args.items())])


CASES = [
    ({"--eps": "abc"}, "malformed eps 'abc'"),
    ({"--eps": "-1/255"}, "negative"),
    ({"--eps": "4"}, "ambiguous.*did you mean 4/255"),
    ({"--eps": "2.5"}, r"outside \(0, 1\]"),
    ({"--encoder": "sim-clp", "--suite": "paper"}, "unknown encoder 'sim-clp'; did you mean 'sim-clip'"),
    ({"--attack": "apdg"}, "unknown attack 'apdg'; did you mean 'apgd'"),
    ({"--attack": "torchattacks:PDG"}, "did you mean 'PGD'"),
    ({"--task": "imagnet", "--suite": "paper"}, "unknown task 'imagnet'; did you mean 'imagenet'"),
    ({"--task": "tiny-shap"}, "unknown task 'tiny-shap'; did you mean 'tiny-shape'"),
    ({"--suite": "papr"}, "unknown suite 'papr'; did you mean 'paper'"),
    ({"--task": "folder:/no/such/folder"}, "data folder /no/such/folder .* does not exist"),
    ({"--n-samples": "0"}, "must be a positive integer"),
    ({"--steps": "-3"}, "must be a positive integer"),
    ({"--batch-size": "0"}, "must be a positive integer"),
    ({"--device": "cuda"}, "CUDA is not available"),
    ({"--out": "/proc/version/results"}, "not writable"),
    ({"--encoder": "missing/model.safetensors"}, "checkpoint missing/model.safetensors does not exist"),
    ({"--attack-args": "{bad"}, "--attack-args is not valid JSON"),
    ({"--task": "tiny-shape", "--data-root": "/proc"}, "does not hold a complete tiny world"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_bad_input_is_one_line_exit_2_nothing_written(world, tmp_path, capsys, case):
    overrides, message = CASES[case]
    out = tmp_path / "results"
    assert _run(world, out, **overrides) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err
    assert not out.exists()


def test_missing_classnames_entries_and_empty_and_corrupt(world, tmp_path, capsys):
    root, data, model = world
    out = tmp_path / "results"
    assert _run(world, out, **{"--task": f"folder:{root / 'empty'}"}) == 2
    assert "has no images" in capsys.readouterr().err
    assert _run(world, out, **{"--encoder": str(root / "corrupt.safetensors"), "--arch": fx.ARCH}) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err
    bad_names = tmp_path / "names"
    fx.make_image_folder(bad_names, per_class=1)
    (bad_names / "classnames.txt").write_text("only one\n")
    assert _run(world, out, **{"--task": f"folder:{bad_names}"}) == 2
    assert "classnames.txt needs one line per folder" in capsys.readouterr().err
    assert not out.exists()


def test_paper_suite_without_data_names_every_way_to_give_it(world, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    import importlib

    import bench.suites

    importlib.reload(bench.suites)
    try:
        assert main(["run", "--suite", "paper", "--task", "imagenet", "--encoder", str(world[2]),
                     "--out", str(tmp_path / "r")]) == 2
    finally:
        monkeypatch.undo()
        importlib.reload(bench.suites)
    err = capsys.readouterr().err
    assert "--data-root" in err and "BENCH_DATA" in err and "--suite tiny" in err


def test_real_process_exit_code_and_no_traceback(world, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--eps", "4", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: eps '4' is ambiguous: pixels are in [0, 1]; did you mean 4/255?"


def test_help_teaches(capsys):
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for word in ("--encoder", "--attack", "--eps", "examples:", "4/255", "resumable"):
        assert word in text


def test_a_reader_that_stops_early_gets_no_traceback():
    """`bench ... | head`: the closed pipe ends the command quietly (exit 0), not with an OSError trace."""
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    # More output than a pipe buffer holds, so the write after `head` exits fails.
    proc = subprocess.run([sys.executable, "-c", "import sys; from bench.cli.main import main; "
                           "sys.argv = ['bench', 'list', 'tasks', '--suite', 'paper']\n"
                           "for _ in range(200): rc = main()\nsys.exit(rc)"],
                          stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=300)
    reader.stdin.close()
    reader.wait()
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 0
