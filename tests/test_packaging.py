"""The package as a user installs it: `python -m build` makes a wheel and an sdist of the working tree,
each goes into a fresh venv that sees nothing of the repository, and the installed `bench` prints its
version and runs the main job on the tiny suite.

The build runs on a copy of the tree (setuptools writes build/ and *.egg-info beside the sources, never
in the repository) and offline (`--no-isolation`: setuptools, wheel and build come with the dev extra).
The fresh venv gets this venv's dependencies without a download through a .pth file naming this venv's
site-packages; that folder also holds the editable install of the project, but only its .pth file
activates it and a .pth file inside a folder named by another .pth is never read, so the fresh venv
imports the copy it installed (checked: every package's __file__ lies in the fresh venv).
"""
from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import bench

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"attacks", "bench", "benchutil", "tasks"}  # the library; benchmarks/ and tests/ are not in it
# the data folders the code opens next to its own modules (Path(__file__)...): they must ship
DATA_FOLDERS = ("bench/model_configs/", "bench/tiny/weights/", "bench/report/site_templates/",
                "bench/report/published/", "tasks/data/")
REPOSITORY = "https://github.com/robust-vlm-bench/robust-vlm-bench"
URLS = {"Homepage": REPOSITORY, "Source": REPOSITORY, "Issues": f"{REPOSITORY}/issues",
        "Documentation": f"{REPOSITORY}/tree/main/docs"}
MAIN_JOB = ["run", "--encoder", "clip", "--attack", "apgd", "--eps", "4/255", "--n-samples", "8"]
DIST_INFO = f"robust_vlm_bench-{bench.__version__}.dist-info"
# run by the fresh venv's python: where each package comes from, whether benchmarks/ leaked, the version
WHERE_FROM = (
    "import importlib, importlib.util, importlib.metadata, json\n"
    f"found = {{p: importlib.import_module(p).__file__ for p in {sorted(PACKAGES)}}}\n"
    "found['benchmarks'] = importlib.util.find_spec('benchmarks') is not None\n"
    "found['version'] = importlib.metadata.version('robust-vlm-bench')\n"
    "print(json.dumps(found))\n"
)
LIGHT_IMPORT = (
    "import sys, bench\n"
    "assert bench.__version__\n"
    "assert 'torch' not in sys.modules, 'import bench loaded torch'\n"
)


def _run(command: list[str | Path], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run it with an environment that points at nothing of the repository; fail with its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # BENCH_HOME stays the session's (tests/conftest.py): the tiny world is generated once.
    env.update(HF_HUB_OFFLINE="1", PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{command} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _copy_working_tree(dest: Path) -> None:
    """Tracked files and untracked ones git does not ignore, as they are in the work tree now."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not part of it
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """{"source": the copied tree, "wheel": ..., "sdist": ...}, built once for the module."""
    base = tmp_path_factory.mktemp("packaging")
    source, dist = base / "source", base / "dist"
    _copy_working_tree(source)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], cwd=base)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(dist.iterdir())
    return {"source": source, "wheel": wheels[0], "sdist": sdists[0]}


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if not name.endswith("/")}


def test_the_wheel_holds_exactly_the_four_packages(artifacts):
    names = _wheel_names(artifacts["wheel"])
    assert {name.split("/")[0] for name in names} == PACKAGES | {DIST_INFO}
    assert artifacts["wheel"].name == f"robust_vlm_bench-{bench.__version__}-py3-none-any.whl"


def test_the_wheel_carries_every_file_of_the_packages_data_included(artifacts):
    """Every file of the four package folders (modules and the data the code opens beside them) is in
    the wheel, and nothing else: a new data file that package-data's globs miss fails here."""
    source = artifacts["source"]
    in_tree = {path.relative_to(source).as_posix() for package in PACKAGES
               for path in (source / package).rglob("*") if path.is_file()}
    in_wheel = {name for name in _wheel_names(artifacts["wheel"]) if not name.startswith(DIST_INFO)}
    assert in_tree - in_wheel == set(), "add these to [tool.setuptools.package-data] in pyproject.toml"
    assert in_wheel - in_tree == set()
    for folder in DATA_FOLDERS:
        assert any(name.startswith(folder) and not name.endswith(".py") for name in in_wheel), folder
    assert "bench/tiny/weights/clip.safetensors" in in_wheel  # the main job's encoder


def test_the_wheel_metadata_has_the_version_urls_and_the_command(artifacts):
    with zipfile.ZipFile(artifacts["wheel"]) as archive:
        metadata = email.parser.Parser().parsestr(archive.read(f"{DIST_INFO}/METADATA").decode())
        entry_points = archive.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert metadata["Name"] == "robust-vlm-bench"
    assert metadata["Version"] == bench.__version__
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL"))
    assert urls == URLS
    assert any(c.startswith("Programming Language :: Python :: 3") for c in metadata.get_all("Classifier"))
    assert "bench = bench.cli.main:main" in entry_points


def test_the_sdist_carries_the_sources_and_the_version(artifacts):
    top = f"robust_vlm_bench-{bench.__version__}"
    with tarfile.open(artifacts["sdist"]) as archive:
        names = set(archive.getnames())
        pkg_info = archive.extractfile(f"{top}/PKG-INFO").read().decode()
    assert {f"{top}/pyproject.toml", f"{top}/README.md", f"{top}/bench/__init__.py",
            f"{top}/bench/tiny/weights/clip.safetensors", f"{top}/tasks/data/robustbench_imagenet_ids.txt"} <= names
    assert f"\nVersion: {bench.__version__}\n" in pkg_info
    assert not any(name.startswith(f"{top}/benchmarks/") for name in names)


def test_importing_bench_for_its_version_stays_light():
    """pyproject reads bench.__version__ and `bench --version` prints it: neither loads torch."""
    _run([sys.executable, "-c", LIGHT_IMPORT], cwd=ROOT)


def _fresh_venv(where: Path) -> Path:
    """A venv with no pip and no packages of its own that imports this venv's dependencies (and pip)
    from a .pth file: nothing is downloaded. Returns its python."""
    _run([sys.executable, "-m", "venv", "--without-pip", where], cwd=where.parent)
    python = where / "bin" / "python"
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              cwd=where).stdout.strip())
    (site_packages / "dependencies-of-the-test-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


@pytest.mark.long
@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_the_installed_package_runs_the_main_job(artifacts, kind, tmp_path):
    env_dir, workdir = tmp_path / "venv", tmp_path / "work"
    workdir.mkdir()
    python = _fresh_venv(env_dir)
    # --ignore-installed: the editable install that the .pth makes visible is never a candidate to
    # uninstall (pip would refuse anyway: it lies outside this environment).
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation", "--ignore-installed",
          "--no-cache-dir", "--quiet", artifacts[kind]], cwd=workdir)

    where = json.loads(_run([python, "-c", WHERE_FROM], cwd=workdir).stdout)
    for package in PACKAGES:
        assert Path(where[package]).is_relative_to(env_dir), (package, where[package])
    assert where["benchmarks"] is False and where["version"] == bench.__version__

    command = env_dir / "bin" / "bench"
    assert _run([command, "--version"], cwd=workdir).stdout == f"robust-vlm-bench {bench.__version__}\n"

    out = tmp_path / "runs"
    summary = _run([command, *MAIN_JOB, "--out", out], cwd=workdir).stdout
    header, *rows = [line.split() for line in summary.splitlines() if line.strip()]
    assert header[:4] == ["encoder", "task", "attack", "eps"] and header[-1] == "run", summary
    assert {"clean", "robust"} <= set(header), summary
    rows = [row for row in rows if row[0] != "records:"]  # the closing line points at the records
    assert rows and all(row[0] == "clip" and row[2:4] == ["apgd", "4/255"] for row in rows), summary
    runs = [row[-1] for row in rows]
    assert sorted(runs) == sorted(p.name for p in out.iterdir()), summary
    for run in runs:
        config = json.loads((out / run / "config.json").read_text())
        assert config["versions"]["robust-vlm-bench"] == bench.__version__
        assert config["git_commit"] == "unknown"  # installed code is outside any git checkout
        assert len((out / run / "records.jsonl").read_text().splitlines()) == 8
