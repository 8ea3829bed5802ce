"""More of the bad-input matrix (tests/test_bad_inputs.py): malformed encoder names, templates and
class names, broken weights, deep JSON, odd torchrun / Slurm environments, CLIP_benchmark copies,
names matplotlib would read as math, and a full disk. Each bad input is one line on stderr,
exit code 2, no traceback, and {out} is never created."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from bench.cli.main import main
from tests import bench_fixtures as fx
from tests.test_bad_inputs import assert_one_line_exit_2, filler
from tests.test_clip_benchmark import make_wds

SHARD_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
                   "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP")


def _variant(root: Path, data: Path, name: str, files: dict[str, str], folders: list[str] | None = None) -> None:
    """root/name: the class folders of data (linked, not copied) with its text files replaced."""
    variant = root / name
    variant.mkdir()
    for folder in folders or [d.name for d in data.iterdir() if d.is_dir()]:
        (variant / folder).symlink_to(data / folder, target_is_directory=True)
    for file in ("classnames.txt", "templates.txt"):
        text = files.get(file, (data / file).read_text())
        if text is not None:
            (variant / file).write_text(text)


def _checkpoints(root: Path) -> None:
    """Checkpoints that read fine but hold broken weights, in both formats."""
    state = {k: v.clone().contiguous() for k, v in fx.random_model(seed=0).state_dict().items()}
    nan = {**state, "logit_scale": torch.tensor(float("nan"))}
    save_file(nan, str(root / "nan.safetensors"), metadata={"architecture": fx.ARCH})
    inf = {**state, "visual.proj": state["visual.proj"].index_fill(0, torch.tensor([1]), float("inf"))}
    for name, weights in (("inf.pt", inf), ("int-keys.pt", {**state, 7: state["logit_scale"]}), ("empty.pt", {})):
        torch.save(weights, root / name)
        (root / name).with_suffix(".json").write_text(json.dumps({"architecture": fx.ARCH}))
    (root / "list-card.pt").write_bytes((root / "inf.pt").read_bytes())
    (root / "list-card.json").write_text("[1, 2]")


def _webdatasets(root: Path) -> None:
    """CLIP_benchmark copies (wds-<case>/wds_vtab-cifar10), each broken in one way."""
    edits = {
        "nshards-word": {"test/nshards.txt": "two\n"}, "nshards-zero": {"test/nshards.txt": "0\n"},
        "shard-missing": {"test/nshards.txt": "3\n"},
        "lfs": {"test/0.tar": "version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n"},
        "corrupt": {"test/1.tar": "garbage" * 1000}, "names-empty": {"classnames.txt": "\n"},
        "names-blank": {"classnames.txt": "airplane\n\nautomobile\nbird\n"},
        "names-few": {"classnames.txt": "airplane\nautomobile\n"},
        "template-field": {"zeroshot_classification_templates.txt": "a photo of a {c}.\na {x} photo.\n"},
        "template-none": {"zeroshot_classification_templates.txt": "a photo.\n"},
        "template-blank": {"zeroshot_classification_templates.txt": "a photo of a {c}.\n\na {c}.\n"},
    }
    for case, files in edits.items():
        folder = root / f"wds-{case}" / "wds_vtab-cifar10"
        make_wds(folder, n=12)
        for name, text in files.items():
            (folder / name).write_text(text)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-more")
    data, model = fx.folder_and_checkpoint(root, per_class=2)
    variants = {
        "tpl-index": {"templates.txt": "a photo of a {}.\na {1} photo.\n"},
        "tpl-name": {"templates.txt": "a {x} photo.\n"}, "tpl-open": {"templates.txt": "a { photo of {}.\n"},
        "tpl-close": {"templates.txt": "a photo of {}. }\n"}, "tpl-none": {"templates.txt": "a photo.\n"},
        "tpl-two": {"templates.txt": "a {} and a {}.\n"}, "tpl-empty": {"templates.txt": "\n  \n"},
        "names-dup": {"classnames.txt": "red square\ngreen circle\nred square\nyellow cross\n"},
        "names-empty": {"classnames.txt": ""}, "names-few": {"classnames.txt": "red square\ngreen circle\n"},
    }
    for name, texts in variants.items():
        _variant(root, data, name, texts)
    _variant(root, data, "folders-clash", {"classnames.txt": None, "templates.txt": None},
             ["red_square", "green_circle"])
    (root / "folders-clash" / "red square").symlink_to(data / "blue_triangle", target_is_directory=True)
    _variant(root, data, "class-empty", {})
    (root / "class-empty" / "zz_gifs").mkdir()
    Image.new("RGB", (8, 8)).save(root / "class-empty" / "zz_gifs" / "a.gif")
    (root / "class-empty" / "classnames.txt").write_text((data / "classnames.txt").read_text() + "gifs\n")
    _checkpoints(root)
    _webdatasets(root)
    for name, manifest in (("world-list", b"[1, 2]"), ("world-binary", b"\xff\xfe\x00garbage")):
        (root / name).mkdir()
        (root / name / "manifest.json").write_bytes(manifest)
    (root / "xdg" / "robust-vlm-bench").mkdir(parents=True)
    (root / "xdg" / "robust-vlm-bench" / "config.json").write_text('["not", "an", "object"]')
    (root / "xdg-root" / "robust-vlm-bench").mkdir(parents=True)
    (root / "xdg-root" / "robust-vlm-bench" / "config.json").write_text('{"data_root": 5}')
    return {"data": str(data), "model": str(model), "root": str(root)}


RUN = ["run", "--encoder", "{model}", "--task", "folder:{data}", "--steps", "2", "--out", "{out}"]
PAPER_CIFAR = ["run", "--suite", "paper", "--encoder", "{model}", "--task", "cifar10", "--n-samples", "4",
               "--out", "{out}", "--data-root"]


def _run(*extra: str) -> list[str]:
    return [*RUN, *extra]


def _folder(variant: str) -> list[str]:
    return _run("--task", f"folder:{{root}}/{variant}")


def _wds(case: str, *extra: str) -> list[str]:
    return [*PAPER_CIFAR, f"{{root}}/wds-{case}", *extra]


HUB_FORM, FILE_FORM = r"write hf-hub:ORG/NAME", r"write hf-file:ORG/NAME/FILE"
ENV_FIX = r"pass --shard I/N"

CASES: list[tuple[list[str], str, dict[str, str]]] = [
    # 1. encoder names of the wrong shape: one line with the form, before any hub call
    *[(_run("--encoder", name), message, {}) for name, message in (
        ("hf-hub:a/b/c", HUB_FORM), ("hf-hub:", HUB_FORM), ("hf-hub:../../etc", HUB_FORM), ("hf-hub:a", HUB_FORM),
        ("hf-hub:a/b/", HUB_FORM), ("hf-hub:-a/b", HUB_FORM), ("hf-hub:a--b/c", HUB_FORM), ("hf-file:x", FILE_FORM),
        ("hf-file:a/b", FILE_FORM), ("hf-file:a/b/", FILE_FORM), ("hf-file:a/b/../../x.pt", FILE_FORM),
        ("hf-file:../b/x.pt", FILE_FORM), ("open_clip:", "write open_clip:ARCH/TAG"),
        ("open_clip:ViT-B-32", "write open_clip:ARCH/TAG"), ("open_clip:/openai", "write open_clip:ARCH/TAG"),
        ("open_clip:ViT-B-32/", "write open_clip:ARCH/TAG"), ("open_clip:ViT-B-32/a/b", "write open_clip:ARCH/TAG"),
        ("tiny:", "write tiny:NAME"), ("tiny:../../etc/passwd", "write tiny:NAME"),
        ("tiny:nope", "no shipped tiny weights"), ("{root}", "is a folder; give the weight file"),
        ("~no-such-user-x/m.pt", "cannot expand '~'"))],
    (_run("--encoder", "{root}/nan.safetensors", "--base", "hf-hub:a/b/c"), HUB_FORM, {}),
    # 2. templates and class names of a folder task: the file, the line and the fix
    *[(_folder(variant), message, {}) for variant, message in (
        ("tpl-index", r"tpl-index/templates.txt line 2: template 'a \{1\} photo.' uses \{1\} where \{\} is needed"),
        ("tpl-name", r"templates.txt line 1: .* uses \{x\}"), ("tpl-open", r"line 1: .* not valid format syntax"),
        ("tpl-close", r"line 1: .* not valid format syntax"), ("tpl-none", r"line 1: .* has no \{\} for the class"),
        ("tpl-two", "has 2 placeholders"), ("tpl-empty", r"tpl-empty/templates.txt has no templates"),
        ("names-dup", r"names-dup/classnames.txt names class 'red square' twice \(non-blank lines 1 and 3\)"),
        ("names-empty", r"names-empty/classnames.txt is empty"),
        ("names-few", "2 class names for 4 class folders"),
        ("folders-clash", r"names class 'red square' twice \(folders 2 and 3\)"),
        ("class-empty", r"class folder .*zz_gifs has no images"))],
    # 3. an empty folder: path is not the working folder
    (_run("--task", "folder:"), "names no folder; write folder:PATH", {}),
    (_run("--task", "tiny-shape,folder:"), "names no folder", {}),
    # 4. broken weights are refused when read, before any run folder
    (_run("--encoder", "{root}/nan.safetensors"), r"nan.safetensors holds NaN or infinite values \(first in tensor "
                                                  r"'logit_scale'\)", {}),
    (_run("--encoder", "{root}/inf.pt"), r"inf.pt holds NaN or infinite values \(first in tensor 'visual.proj'\)", {}),
    (_run("--encoder", "{model},{root}/inf.pt"), "inf.pt holds NaN", {}),
    (_run("--encoder", "{root}/int-keys.pt"), r"has a key that is not a string \(7\)", {}),
    (_run("--encoder", "{root}/empty.pt"), "holds no tensors", {}),
    (_run("--encoder", "{root}/list-card.pt"), "list-card.json is a list, not a JSON object", {}),
    # 5. --attack-args nested without end, or repeating a key
    *[(_run("--attack", "apgd", "--attack-args", args), message, {}) for args, message in (
        ("[" * 100000, "nested too deeply"), ('{"a":' * 100000, "nested too deeply"),
        ('{"a":' * 9 + "1" + "}" * 9, "nested too deeply"), ('{"restarts": 1, "restarts": 5}', "'restarts' twice"),
        ('{"restarts": ' + "9" * 5000 + "}", "unreadable value"))],
    # 7. torchrun / Slurm variables that name no shard of this run
    *[(_run(), message, env) for env, message in (
        ({"WORLD_SIZE": "2", "RANK": "5"}, rf"RANK=5 is outside 0..1 \(WORLD_SIZE=2\).*{ENV_FIX}"),
        ({"RANK": "-1"}, "RANK=-1 is outside 0..0"), ({"WORLD_SIZE": "0", "RANK": "0"}, "WORLD_SIZE=0 must be >= 1"),
        ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE='two' is not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "1.0"}, "RANK='1.0' is not an integer"),
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 is set but RANK is not"),
        ({"SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_ID": "9"}, "SLURM_ARRAY_TASK_ID=9 is not one of 4"),
        ({"SLURM_ARRAY_TASK_COUNT": "0", "SLURM_ARRAY_TASK_ID": "0"}, "a count >= 1"),
        ({"SLURM_ARRAY_TASK_COUNT": "4"}, "need a task id"),
        ({"SLURM_ARRAY_TASK_COUNT": "x", "SLURM_ARRAY_TASK_ID": "0"}, "SLURM_ARRAY_TASK_COUNT='x' is not an integer"),
        ({"SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1",
          "SLURM_ARRAY_TASK_MAX": "7"}, "not one of 3 evenly spaced"))],
    # 9. CLIP_benchmark copies, tiny worlds and the config file, broken in one way each
    *[(_wds(case), message, {}) for case, message in (
        ("nshards-word", r"nshards.txt must hold the number of shards .* not 'two'"),
        ("nshards-zero", "nshards.txt must hold the number of shards"), ("shard-missing", r"2.tar is missing"),
        ("lfs", "0.tar is a git-lfs pointer"), ("corrupt", "cannot read the webdataset .*git clone"),
        ("names-empty", "classnames.txt is empty"), ("names-blank", "classnames.txt line 2 is blank"),
        ("template-field", r"templates.txt line 2: template 'a \{x\} photo.' uses \{x\}"),
        ("template-none", r"templates.txt line 1: .* has no \{\}"), ("template-blank", "templates.txt line 2 is blank"))],
    (_wds("names-few", "--n-samples", "12"), "has label 2, but classnames.txt names 2 classes", {}),
    (_run("--task", "tiny-shape", "--data-root", "{root}/world-list"), "does not hold a complete tiny world", {}),
    (_run("--task", "tiny-shape", "--data-root", "{root}/world-binary"), "does not hold a complete tiny world", {}),
    (["run", "--suite", "paper", "--encoder", "{model}", "--task", "cifar10", "--out", "{out}"],
     "config.json must be a JSON object", {"XDG_CONFIG_HOME": "{root}/xdg", "BENCH_DATA": ""}),
    (["run", "--suite", "paper", "--encoder", "{model}", "--task", "cifar10", "--out", "{out}"],
     "config.json must be a JSON object", {"XDG_CONFIG_HOME": "{root}/xdg-root", "BENCH_DATA": ""}),
    (_run("--task", "tiny-shape", "--data-root", "~no-such-user-x/world"), "--data-root .* cannot expand '~'", {}),
    (_run("--workers", "100000"), r"--workers: '100000' must be in 0\.\.\d+ \(4 per CPU\)", {}),
    (["data", "tiny", "--preview", "--out", "{out}.jpg"], "the preview is a PNG picture", {}),
    (["data", "tiny", "--preview", "--out", "{out}"], "the preview is a PNG picture", {}),
]


def _case_id(argv: list[str], env: dict[str, str]) -> str:
    """What tells a case apart: the arguments after the shared run command, and the environment."""
    shared = next((len(prefix) for prefix in (RUN, PAPER_CIFAR) if argv[: len(prefix)] == prefix), 0)
    return " ".join([*(f"{k}={v}" for k, v in env.items()), *argv[shared:]])[:90]


@pytest.mark.parametrize("argv, message, env", CASES, ids=[_case_id(a, e) for a, _, e in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(files, tmp_path, capsys, monkeypatch, argv, message, env):
    out = tmp_path / "out"
    fill = filler({**files, "out": str(out)})
    for name in SHARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, fill(value))
    assert_one_line_exit_2(argv, message, fill, capsys)
    assert not out.exists() and not Path(f"{out}.jpg").exists()


def test_the_new_matrix_covers_every_defect_class():
    assert len(CASES) >= 75


def test_every_shipped_tiny_weight_and_the_test_checkpoints_pass_the_weight_checks(tmp_path):
    from bench.encoders.weights import check_readable, read_state_dict
    from bench.tiny import WEIGHTS as TINY_WEIGHTS

    shipped = sorted(TINY_WEIGHTS.glob("*.safetensors"))
    assert len(shipped) >= 8
    model = fx.random_model(seed=1)
    written = [fx.save_full_safetensors(model, tmp_path / "m.safetensors"), fx.save_full_pickle(model, tmp_path / "m.pt"),
               fx.save_vision_pickle(model, tmp_path / "v.pt", tmp_path / "m.pt")]
    for path in [*shipped, *written]:
        check_readable(path)
        assert read_state_dict(path)


def test_a_checkpoint_rewritten_with_nan_after_a_check_is_checked_again(tmp_path):
    """The once-per-file check is keyed by the file's size and time: new contents are read again."""
    from bench.encoders.weights import read_state_dict
    from benchutil.errors import BenchError

    path = fx.save_full_safetensors(fx.random_model(seed=2), tmp_path / "m.safetensors")
    state = read_state_dict(path)
    state["text_projection"][3, 1] = float("-inf")
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"architecture": fx.ARCH})
    os.utime(path, ns=(0, 1))  # a different time, whatever the clock's resolution
    with pytest.raises(BenchError, match="first in tensor 'text_projection'"):
        read_state_dict(path)


def test_local_rank_and_a_strided_slurm_array_are_read_or_refused():
    from bench.run.sharding import Shard, detect_shard, shard_device
    from benchutil.errors import BenchError

    assert shard_device("cuda", {"LOCAL_RANK": "3"}) == "cuda:3" and shard_device("cpu", {"LOCAL_RANK": "x"}) == "cpu"
    for bad in ("x", "-1"):
        with pytest.raises(BenchError, match="LOCAL_RANK"):
            shard_device("cuda", {"LOCAL_RANK": bad})
    strided = {"SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "12",
               "SLURM_ARRAY_TASK_STEP": "4"}
    assert detect_shard(None, {**strided, "SLURM_ARRAY_TASK_ID": "8"}) == Shard(2, 4)
    with pytest.raises(BenchError, match="SLURM_ARRAY_TASK_ID=6 is not one of 4"):
        detect_shard(None, {**strided, "SLURM_ARRAY_TASK_ID": "6"})
    assert detect_shard("1/2", {"RANK": "-7"}) == Shard(1, 2)  # the flag wins over the environment
    assert detect_shard(None, {"RANK": "0", "WORLD_SIZE": "1"}) == Shard(0, 1)


def test_names_with_dollars_are_drawn_literally_by_plot_and_site(files, tmp_path, capsys):
    """An encoder, task and class named like mathtext: bench plot and bench site draw them as text."""
    from bench.report.plotting import eps_figure, label_eps_axes

    name = r"mathtext$\frac$"
    data = tmp_path / name
    shutil.copytree(files["data"], data)
    (data / "red_square").rename(data / name)
    (data / "classnames.txt").write_text((data / "classnames.txt").read_text().replace("red square", name))
    model = tmp_path / f"m{name}.safetensors"
    shutil.copy(files["model"], model)
    runs = tmp_path / "runs"
    assert main(["run", "--encoder", str(model), "--task", f"folder:{data}", "--attack", "pgd", "--steps", "1",
                 "--eps", "0,1/255", "--out", str(runs)]) == 0
    assert main(["plot", str(runs), "--out", str(tmp_path / "plot.png")]) == 0
    assert main(["site", str(runs), "--out", str(tmp_path / "site")]) == 0
    capsys.readouterr()
    with Image.open(tmp_path / "plot.png") as png:
        assert png.size[0] > 100
    assert name in (tmp_path / "site" / "index.html").read_text()
    fig, ax = eps_figure((4, 3))  # the shared figure, every text kind: legend, labels, title
    ax.plot([0, 1], [50, 40], label=name)
    label_eps_axes(ax, name)
    ax.set_title(f"{name} $x^2$")
    ax.legend()
    fig.tight_layout()
    fig.savefig(tmp_path / "direct.svg", format="svg")
    assert r"mathtext$\frac$" in ax.get_legend().get_texts()[0].get_text()


# ---- a full disk: a real tmpfs filled to the last byte (mounting needs root; CI runs as root)


@pytest.fixture
def full_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _only_filler_and(mount: Path, *allowed: str) -> None:
    """Nothing half-written is left: no temporary file, no empty output."""
    left = sorted(p.relative_to(mount).as_posix() for p in mount.rglob("*") if p.is_file())
    assert not [p for p in left if p.endswith(".tmp") or "/." in f"/{p}" and not p.endswith(".lock")], left
    assert all(p == "filler" or any(p.startswith(a) for a in allowed) for p in left), left


def _one_error_line(err: str, where: Path, progress: bool = False) -> None:
    """One error line (after the progress bar of work that had started, where there is one)."""
    lines = [line for line in err.strip().splitlines() if line.startswith("error:") or not progress]
    assert "Traceback" not in err and len(lines) == 1, err
    assert re.search(rf"no space left on device writing {re.escape(str(where))}.*; free space or choose another "
                     r"--out", lines[0]), err


def test_atomic_writes_on_a_full_disk_keep_the_old_file_and_leave_no_temporary(full_disk):
    from benchutil.errors import BenchError
    from benchutil.fileio import append_synced, atomic_write_text

    (full_disk / "filler").write_bytes(b"")  # room for the small files below, then fill again
    table, records = full_disk / "table.md", full_disk / "records.jsonl"
    atomic_write_text(table, "old table\n")
    append_synced(records, '{"id": "a"}\n')
    with open(full_disk / "filler", "wb", buffering=0) as f:
        with pytest.raises(OSError):
            while True:
                f.write(b"\0" * 4096)
    with pytest.raises(BenchError, match=f"no space left on device writing {re.escape(str(full_disk))}"):
        atomic_write_text(table, "new table " * 10000)
    with pytest.raises(BenchError, match="no space left on device"):
        append_synced(records, '{"id": "b", "pad": "' + "x" * 100000 + '"}\n')
    assert table.read_text() == "old table\n" and records.read_text() == '{"id": "a"}\n'
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "records.jsonl", "table.md"]


def test_bench_run_on_a_full_disk_is_one_line(files, full_disk, capsys):
    out = full_disk / "out"
    code = main(["run", "--encoder", files["model"], "--task", f"folder:{files['data']}", "--steps", "1",
                 "--out", str(out)])
    assert code == 2
    _one_error_line(capsys.readouterr().err, out)
    _only_filler_and(full_disk, "out/")


def test_bench_data_on_a_full_disk_is_one_line_and_leaves_nothing(full_disk, capsys):
    out = full_disk / "world"
    assert main(["data", "tiny", "--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, out, progress=True)
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


@pytest.mark.parametrize("command", [["leaderboard", "results/tiny/runs", "--out", "{mount}/table.md"],
                                     ["plot", "results/tiny/runs", "--out", "{mount}/plot.png"],
                                     pytest.param(["site", "results/tiny/runs", "--out", "{mount}/site"],
                                                  marks=pytest.mark.long)])
def test_tables_plots_and_sites_on_a_full_disk_are_one_line_and_leave_nothing(full_disk, capsys, command):
    """bench leaderboard / plot / site write through benchutil.fileio: no traceback, no 0-byte table."""
    code = main([a.replace("{mount}", str(full_disk)) for a in command])
    assert code == 2
    _one_error_line(capsys.readouterr().err, full_disk, progress=True)  # site may generate the tiny world first
    _only_filler_and(full_disk, "site/")
    assert not [p for p in full_disk.rglob("*") if p.is_file() and p.stat().st_size == 0 and p.suffix != ".lock"]
