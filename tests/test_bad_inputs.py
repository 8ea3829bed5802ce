"""The bad-input matrix: every subcommand, each bad input one line on stderr, exit code 2, no
traceback, nothing written. {out} is a fresh path that must still not exist afterwards."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.cli.main import main
from tests import bench_fixtures as fx


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from bench.tiny.suite import world_root

    world_root()  # the tiny world exists, so its first-use progress bar is not in these outputs
    root = tmp_path_factory.mktemp("bad")
    data, model = fx.folder_and_checkpoint(root, per_class=2)
    (root / "a_file").write_text("not a folder")
    (root / "corrupt.safetensors").write_bytes(b"\x00not a checkpoint")
    (root / "mine").mkdir()
    (root / "mine" / "thesis.tex").write_text("years of work")
    # results folders whose run has a config or a records line of the wrong shape or encoding
    good = {"encoder": "m", "task": "t", "attack": "none", "eps": 0.0, "eps_label": "clean", "metric": "accuracy %",
            "norm": "linf"}
    record = '{"id": "a", "clean_score": 100.0, "adv_score": 0.0}\n'
    for name, config, records in BAD_RUNS:
        run = root / name / "run"
        run.mkdir(parents=True)
        text = config if config is not None else json.dumps(good)
        (run / "config.json").write_bytes(text if isinstance(text, bytes) else text.encode())
        (run / "records.jsonl").write_bytes(record.encode() + records)
    for name, text in (("list", "[]"), ("wrong-format", '{"format": "x", "results": {}}'),
                       ("string-cell", '{"format": "robust-vlm-bench aggregate v1", "results": {"m": {"a": "x"}}}')):
        (root / f"aggregate-{name}.json").write_text(text)
    # a captioning run of the paper suite: its CIDEr intervals need the references from the data
    import shutil

    paper = root / "paper-captions" / "run"
    runs = Path(__file__).resolve().parent.parent / "results" / "tiny" / "runs"
    shutil.copytree(next(runs.glob("tiny-llava+clip__tiny-captions__none__*")), paper)
    config = json.loads((paper / "config.json").read_text())
    (paper / "config.json").write_text(json.dumps({**config, "task": "coco", "vlm": "llava-1.5-7b"}))
    (root / "no-manifest").mkdir()
    for name, text in SUITE_FILES.items():
        (root / f"manifest-{name}").mkdir()
        (root / f"manifest-{name}" / "suite.toml").write_text(text)
    return {"data": str(data), "model": str(model), "file": str(root / "a_file"), "root": str(root),
            "corrupt": str(root / "corrupt.safetensors"), "mine": str(root / "mine")}


# suite files (bench run --config, bench reproduce) a hand edit can break, and the line each gives
SUITE_FILES = {
    "bad-toml": "encoder = [\"clip\"\n",
    "runs-number": "run = 3\n",
    "unknown-key": "encoders = [\"clip\"]\ntask = \"tiny-shape\"\n",
    "unknown-run-key": "[[run]]\nencoder = \"clip\"\ntask = \"tiny-shape\"\nsamples = 5\n",
    "bool-eps": "encoder = \"clip\"\ntask = \"tiny-shape\"\neps = true\n",
    "zero-samples": "encoder = \"clip\"\ntask = \"tiny-shape\"\nn_samples = 0\n",
    "number-encoder": "[[run]]\nencoder = 3\ntask = \"t\"\n",
    "no-task": "[[run]]\nencoder = \"clip\"\n",
}
SUITE_FILE_MESSAGES = {
    "bad-toml": "is not valid TOML", "runs-number": r"must be one or more \[\[run\]\] tables",
    "unknown-key": "did you mean 'encoder'", "unknown-run-key": "did you mean 'n_samples'",
    "bool-eps": "eps = True is not a value", "zero-samples": "must be a positive integer",
    "number-encoder": "encoder = 3; give a name", "no-task": "names no task",
}


# (folder, config text or None for a sound one, records after one sound line): what a user can end up
# with (a hand edit, a file from another tool, a disk error)
BAD_RUNS = [
    ("bad-config", "{not json", b""), ("bad-records", None, b"garbage\n"),
    ("config-list", "[]", b""), ("config-no-task", '{"encoder": "m", "attack": "none", "eps": 0, "eps_label": "clean", '
                                                  '"metric": "accuracy %", "norm": "linf"}', b""),
    ("config-eps-string", '{"encoder": "m", "task": "t", "attack": "none", "eps": "4/255", "eps_label": "clean", '
                          '"metric": "accuracy %", "norm": "linf"}', b""),
    ("config-bad-utf8", b'{"encoder": "m\xff"}', b""), ("records-empty-object", None, b"{}\n"),
    ("records-list", None, b"[]\n"), ("records-null", None, b"null\n"),
    ("records-string-score", None, b'{"id": "b", "clean_score": "100", "adv_score": 0.0}\n'),
    ("records-bad-utf8", None, b'{"id": "\xc3\x28", "clean_score": 1, "adv_score": 0}\n'),
    ("records-truncated-utf8", None, b'{"id": "\xe2\x82", "clean_score": 1, "adv_score": 0}\n'),
    ("records-nested", None, b"[" * 100000 + b"\n"),
    ("records-contradiction", None, b'{"id": "b", "clean_score": 0.0, "adv_score": 100.0, "linf": 0.0}\n'),
]
# what each bad run folder's error names
BAD_RUN_MESSAGES = {
    "bad-config": "run config", "bad-records": "line 2 is not valid JSON",
    "config-list": "is a list, not a JSON object",
    "config-no-task": "has no 'task'", "config-eps-string": "'eps' = \"4/255\", which is not a finite number",
    "config-bad-utf8": "not UTF-8", "records-empty-object": "line 2 has no 'id'", "records-list": "line 2 is a list",
    "records-null": "line 2 is null", "records-string-score": "'clean_score' = \"100\"",
    "records-bad-utf8": "line 2 is not UTF-8", "records-truncated-utf8": "line 2 is not UTF-8",
    "records-nested": "line 2 nests too deep", "records-contradiction": "record 'b' contradicts itself",
}

RUN = ["run", "--encoder", "{model}", "--task", "folder:{data}", "--steps", "2", "--out", "{out}"]
TRAIN = ["train", "--suite", "paper", "--base", "{model}", "--data", "{data}", "--method", "fare", "--steps", "2",
         "--out", "{out}"]


def _run(*extra: str) -> list[str]:
    return [*RUN, *extra]


def _train(*extra: str) -> list[str]:
    return [*TRAIN, *extra]


CASES: list[tuple[list[str], str]] = [
    # bench run: eps
    *[(_run(f"--eps={eps}"), message) for eps, message in (
        ("abc", "malformed eps"), ("-1/255", "negative"), ("4", "ambiguous"), ("2.5", r"outside \(0, 1\]"),
        ("inf", "infinite"), ("1e999", "infinite"), ("nan", "NaN"), ("1/0", "malformed eps"), ("", "malformed"),
        ("4/255,", "malformed"), ("0x4", "malformed"), ("4/255/2", "malformed"))],
    # counts
    *[(_run(f"{flag}={value}"), message) for flag in ("--n-samples", "--steps", "--batch-size")
      for value, message in (("0", "positive integer"), ("-2", "positive integer"), ("x", "not an integer"))],
    (_run("--seed", "x"), "invalid int value"),
    # devices
    *[(_run("--device", device), message) for device, message in (
        ("cpux", "unknown --device 'cpux'"), ("mps", "MPS is not available"), ("cuda", "CUDA is not available"),
        ("cuda:x", "unknown --device"), ("tpu", "unknown --device"), ("cuda:1", "CUDA is not available"))],
    # attacks and their arguments
    (_run("--attack", "apdg"), "did you mean 'apgd'"), (_run("--attack", "torchattacks:PDG"), "did you mean 'PGD'"),
    (_run("--attack", "autoattak"), "did you mean 'autoattack'"),
    *[(_run("--attack", attack, "--attack-args", args), message) for attack, args, message in (
        ("apgd", "{bad", "not valid JSON"), ("apgd", "[1]", "must be a JSON object"),
        ("apgd", '{"bogus": 1}', "no argument 'bogus'"), ("apgd", '{"restarts": -1}', "restarts must be > 0"),
        ("apgd", '{"restarts": 0}', "restarts must be > 0"), ("apgd", '{"rho": "x"}', "rho must be float"),
        ("apgd", '{"initial_step": NaN}', "initial_step must be float"), ("pgd", '{"step_size": 0}', "must be > 0"),
        ("pgd", '{"restarts": 2}', "no argument 'restarts'"), ("cw", '{"kappa": -1}', "kappa must be >= 0"),
        ("cw", '{"steps": 3}', "no argument 'steps'"), ("aa", '{"n_targets": 0}', "n_targets must be > 0"),
        ("none", '{"restarts": 1}', "no argument 'restarts'"), ("torchattacks:PGD", '{"bogus": 1}', "no argument"))],
    # options with choices, shards, protocol, numbers
    (_run("--norm", "l3"), "invalid choice"), (_run("--precision", "fp8"), "invalid choice"),
    (_run("--protocol", "x"), "invalid choice"), (_run("--shard", "2/2"), "--shard"),
    (_run("--shard", "x"), "malformed --shard"), (_run("--shard", "1"), "malformed --shard"),
    (_run("--early-stop", "nan"), "not a finite number"), (_run("--early-stop", "inf"), "not a finite number"),
    (_run("--early-stop", "x"), "not a number"),
    # names, files, folders
    (_run("--encoder", "sim-clp", "--suite", "paper"), "did you mean 'sim-clip'"),
    (_run("--encoder", "missing/model.safetensors"), "does not exist"),
    (_run("--encoder", "{corrupt}", "--arch", fx.ARCH), "cannot read checkpoint"),
    (_run("--encoder", "clip", "--base", "clip"), "--base applies to checkpoint files"),
    (_run("--task", "tiny-shap"), "did you mean 'tiny-shape'"), (_run("--suite", "papr"), "did you mean 'paper'"),
    (_run("--task", "imagnet", "--suite", "paper"), "did you mean 'imagenet'"),
    (_run("--task", "folder:/no/such/folder"), "does not exist"),
    (_run("--task", "tiny-vqa", "--vlm", "tiny-lava"), "did you mean 'tiny-llava'"),
    (_run("--task", "tiny-shape", "--target", "maybe"), "--target applies to captioning"),
    (_run("--task", "tiny-vqa", "--attack", "apgd-dlr"), "needs class logits"),
    (_run("--task", "tiny-shape", "--data-root", "/proc"), "does not hold a complete tiny world"),
    (["run", "--encoder", "{model}", "--task", "folder:{data}", "--out", "{file}/x"], "not writable"),
    (_run("--encoder", ""), "--encoder is empty"), (_run("--task", ","), "--task is empty"),
    (_run("--n-samples", "1000"), "--n-samples 1000 is more than the 8 samples of"),
    (["compare", "results/tiny/runs", "--encoders", "clip,clip"], "two different names"),
    (_run("--bogus-flag"), "unrecognized arguments"), (_run("--save-examples=-2"), "must be >= 0"),
    # bench train
    *[(_train(f"{flag}={value}"), message) for flag, value, message in (
        ("--lr", "nan", "not a finite number"), ("--lr", "inf", "not a finite number"), ("--lr", "0", "must be > 0"),
        ("--lr", "-1", "must be > 0"), ("--lr", "x", "not a number"), ("--wd", "nan", "not a finite number"),
        ("--wd", "-1", "must be >= 0"), ("--warmup", "-1", "must be >= 0"), ("--warmup", "x", "not an integer"),
        ("--workers", "-1", "must be >= 0"), ("--steps", "0", "positive integer"), ("--batch-size", "0", "positive"),
        ("--eps", "inf", "infinite"), ("--eps", "4", "ambiguous"), ("--eps", "abc", "malformed eps"),
        ("--eps", "0", "clean training"), ("--inner-step-size", "abc", "malformed eps"),
        ("--method", "far", "did you mean 'fare'"), ("--device", "cpux", "unknown --device"),
        ("--device", "cuda", "CUDA is not available"), ("--betas", "0.9", "not two numbers"),
        ("--betas", "a,b", "not two numbers"), ("--betas", "nan,0.9", "finite"),
        ("--save-dtype", "x", "invalid choice"), ("--anchor", "x", "invalid choice"),
        ("--suite", "papr", "invalid choice"), ("--base", "sim-clp", "did you mean"),
        ("--base", "missing.pt", "does not exist"), ("--data", "/no/such", "does not exist"),
        ("--inner-steps", "0", "positive integer"), ("--holdout", "0", "positive integer"),
        ("--checkpoint-every", "0", "positive integer"))],
    (["train", "--suite", "paper", "--method", "clip", "--out", "{out}"], "not available for --suite paper"),
    (["train", "--suite", "paper", "--method", "fare", "--out", "{out}"], "needs --data"),
    # bench data
    (["data", "tiny", "--out", "{mine}"], "not a tiny world"), (["data", "tiny", "--out", "{file}/world"], "{file}"),
    (["data", "tiny"], "needs --out"), (["data", "small", "--out", "{out}"], "invalid choice"),
    (["data", "tiny", "--seed", "x", "--out", "{out}"], "invalid int"),
    # bench leaderboard / plot
    (["leaderboard", "{out}"], "does not exist"), (["leaderboard", "{root}/mine"], "no finished"),
    # every reader of finished runs, on every malformed config and records line
    *[([*command, f"{{root}}/{name}"], message) for name, message in BAD_RUN_MESSAGES.items()
      for command in (["leaderboard"], ["plot"], ["site", "--out", "{out}"], ["audit"],
                      ["compare", "--encoders", "m,n"])],
    *[(["leaderboard", f"{{root}}/aggregate-{name}.json"], message) for name, message in (
        ("list", "is a list, not a JSON object"), ("wrong-format", "has format 'x'"),
        ("string-cell", "'a' = \"x\", which is not a finite number or null"))],
    *[(["reproduce", f"{{root}}/manifest-{name}"], message) for name, message in SUITE_FILE_MESSAGES.items()],
    *[(["run", "--config", f"{{root}}/manifest-{name}/suite.toml"], message)
      for name, message in SUITE_FILE_MESSAGES.items() if name not in ("number-encoder", "no-task")],
    (["run", "--config", "{root}/no-manifest/suite.toml"], "suite file"),
    (["leaderboard", "{out}", "--format", "pdf"], "invalid choice"),
    (["leaderboard", "results/tiny/runs", "--encoders", "fare-5", "--out", "{out}"], "did you mean 'fare-4'"),
    (["leaderboard", "results/tiny/runs", "--tasks", "tiny-shap", "--out", "{out}"], "did you mean 'tiny-shape'"),
    (["compare", "results/tiny/runs", "{out}", "--encoders", "fare-4,clip"], "does not exist"),
    (["leaderboard", "{root}/paper-captions", "--ci", "--out", "{out}"], "no data root for the paper suite"),
    (["leaderboard", "{root}/paper-captions", "--ci", "--data-root", "{out}"], "dataset_coco.json does not exist"),
    (["plot", "{out}"], "does not exist"),
    # bench site
    (["site", "{out}", "--out", "{out}/site"], "does not exist"), (["site", "{root}/mine"], "required"),
    (["site", "{root}/mine", "--out", "{out}"], "no finished"),
    # bench audit
    (["audit", "{out}"], "does not exist"), (["audit", "{root}/mine"], "no finished zero-shot"),
    (["audit", "results/tiny/runs", "--encoders", "fare-5"], "did you mean 'fare-4'"),
    (["audit", "{root}/mine", "--n-samples", "0"], "positive"),
    # bench reproduce
    (["reproduce", "{root}/no-manifest"], "suite.toml does not exist"),
    (["reproduce", "{out}", "--tolerance", "nan"], "finite"), (["reproduce", "{out}", "--tolerance=-1"], "must be >= 0"),
    (["reproduce", "{out}", "--n-samples", "0"], "positive"),
    (["reproduce", "results/tiny", "--encoders", "clp"], "did you mean 'clip'"),
    (["reproduce", "results/tiny", "--tasks", "tiny-shap"], "did you mean 'tiny-shape'"),
    # bench list
    (["list", "models"], "invalid choice"), (["list", "encoders", "--suite", "papr"], "did you mean 'paper'"),
    ([], "required"), (["nonsense"], "invalid choice"),
]


def filler(values: dict[str, str]):
    """Replaces {placeholders} with the fixture's paths; JSON braces stay as they are."""
    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return text

    return fill


def assert_one_line_exit_2(argv: list[str], message: str, fill, capsys) -> None:
    """The CLI on a bad input: exit code 2, one line on stderr matching `message`, no traceback."""
    code = main([fill(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(fill(message), err), err


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(files, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert_one_line_exit_2(argv, message, filler({**files, "out": str(out)}), capsys)
    assert not out.exists()


def test_the_matrix_has_over_a_hundred_cases():
    assert len(CASES) >= 100


def test_a_broken_second_encoder_or_a_corrupt_later_image_stops_before_any_run(files, tmp_path, capsys):
    out = tmp_path / "out"
    both = f"{files['model']},{files['corrupt']}"
    assert main(["run", "--encoder", both, "--arch", fx.ARCH, "--task", f"folder:{files['data']}", "--steps", "2",
                 "--out", str(out)]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err and not out.exists()
    import shutil

    data = tmp_path / "data"
    shutil.copytree(files["data"], data)
    last = sorted((data / "blue_triangle").iterdir())[-1]
    last.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["run", "--encoder", files["model"], "--task", f"folder:{data}", "--steps", "2", "--batch-size", "1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read image {last}" in err and err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("line", [b"{}\n", b"null\n", b'{"id": "\xc3\x28", "clean_score": 1, "adv_score": 0}\n'],
                         ids=["empty object", "null", "bad utf-8"])
def test_resuming_into_a_run_with_a_malformed_line_is_one_line_and_changes_nothing(files, tmp_path, capsys, line):
    out = tmp_path / "runs"
    argv = ["run", "--encoder", files["model"], "--task", f"folder:{files['data']}", "--eps", "4/255", "--steps", "2",
            "--n-samples", "2", "--batch-size", "1", "--out", str(out)]
    assert main(argv) == 0
    (records,) = out.rglob("records.jsonl")
    kept = records.read_bytes().splitlines(keepends=True)[:1] + [line]  # a sample to redo, then the bad line
    records.write_bytes(b"".join(kept))
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and f"{records} line 2" in err, err
    assert records.read_bytes() == b"".join(kept)
