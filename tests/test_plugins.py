"""Plugins: a package installed with pip adds an attack, an encoder, a task and a VLM through entry
points, `bench list` names its distribution, and `bench run` uses them like built-in names; a
broken plugin is one line naming its distribution (exit 2), and an unused one is never imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.run.store import CONFIG, read_records

ROOT = Path(__file__).resolve().parent.parent
PIP = Path(sys.executable).parent / "pip"

PLUGIN = "bench-plugin-example"  # its distribution name; the module is bench_plugin_example
PLUGIN_MODULE = '''
"""An example plugin: FGSM as a new optimiser core, an ensemble of it and PGD on the CW margin, the
tiny clip and tiny-shape under new names, and tiny-llava under a new name."""
from attacks.core_registry import register_core
from attacks.pgd import run_pgd
from attacks.table import AttackEntry, Member
from bench.encoders.load import EncoderSpec
from bench.vlm import VLMSpec
from tasks.datasets import DatasetSpec


@register_core("plugin-fgsm")
def run_fgsm(objective, x, *, eps, norm="linf", steps=1, seed=0, stop_on_success=True, active=None,
             name="plugin-fgsm"):
    """One signed-gradient step of size eps from the clean image (Goodfellow et al. 2015)."""
    return run_pgd(objective, x, eps=eps, norm=norm, steps=1, step_size=eps, random_start=False, seed=seed,
                   stop_on_success=stop_on_success, active=active, name=name)


ATTACK = AttackEntry("plugin-fgsm-cw", (Member("plugin-fgsm", "plugin-fgsm", "ce"),
                                        Member("pgd-cw", "pgd", "cw", targeted=True)),
                     "FGSM, then PGD on the CW margin (example plugin)")


def encoders(suite):
    if suite.name == "tiny":  # a tiny-clip encoder fits the tiny suite only
        suite.encoders.add("plugin-clip", EncoderSpec("tiny-clip", "tiny:clip"), "the tiny clip, renamed by a plugin")


def tasks(suite):
    if suite.name == "tiny":
        suite.datasets.add("plugin-shape", DatasetSpec("classification/tiny-shape/test"),
                           "tiny-shape's test split under a plugin's name")


def vlms(suite):
    if suite.name == "tiny":
        registry = suite.vlms()
        tiny_llava = registry.get("tiny-llava").value
        registry.add("plugin-llava", VLMSpec(tiny_llava.load), "tiny-llava, renamed by a plugin")
'''
PLUGIN_ENTRY_POINTS = {"attacks": {"plugin-fgsm-cw": "bench_plugin_example:ATTACK"},
                       "encoders": {"plugin-clip": "bench_plugin_example:encoders"},
                       "tasks": {"plugin-shape": "bench_plugin_example:tasks"},
                       "vlms": {"plugin-llava": "bench_plugin_example:vlms"}}

# A plugin that takes built-in names: refused, naming its distribution.
CLASH_MODULE = '''
from attacks.table import AttackEntry, Member
from tasks.datasets import DatasetSpec

ATTACK = AttackEntry("apgd", (Member("apgd", "pgd", "ce"),), "not the real apgd")


def tasks(suite):  # a classification task named like a VLM task of the tiny suite
    if suite.name == "tiny":
        suite.datasets.add("tiny-vqa", DatasetSpec("classification/tiny-shape/test"), "a clash")
'''
CLASH_ENTRY_POINTS = {"attacks": {"apgd": "bench_plugin_clash:ATTACK"}, "tasks": {"clash": "bench_plugin_clash:tasks"}}

BROKEN_MODULE = "import bench_plugin_no_such_dependency  # the plugin's own import fails\n"
BROKEN_ENTRY_POINTS = {"attacks": {"broken": "bench_plugin_broken:ATTACK"},
                       "encoders": {"broken": "bench_plugin_broken:register"}}


def _install(root: Path, distribution: str, version: str, module: str,
             entry_points: dict[str, dict[str, str]]) -> Path:
    """Write the package's source and pip-install it for real into root/site (no index, no build isolation)."""
    name = distribution.replace("-", "_")
    source = root / f"{distribution}-src"
    source.mkdir()
    (source / f"{name}.py").write_text(module)
    groups = "".join(f'\n[project.entry-points."robust_vlm_bench.{kind}"]\n'
                     + "".join(f'"{ep}" = "{target}"\n' for ep, target in eps.items())
                     for kind, eps in entry_points.items())
    (source / "pyproject.toml").write_text(textwrap.dedent(f'''\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{distribution}"
        version = "{version}"

        [tool.setuptools]
        py-modules = ["{name}"]
        ''') + groups)
    site = root / "site"
    done = subprocess.run([str(PIP), "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
                           "--target", str(site), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (site / f"{name}.py").is_file()
    return site


def _bench(site: Path | None, *commands: list[str]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each `bench` command, run by the CLI's main in one fresh process
    whose path holds `site` (one process: each start costs seconds of imports)."""
    script = textwrap.dedent("""\
        import contextlib, io, json, sys
        from bench.cli.main import main
        results = []
        for argv in json.loads(sys.argv[1]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
            results.append((code, out.getvalue(), err.getvalue()))
        print(json.dumps(results))
        """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(result) for result in json.loads(done.stdout.splitlines()[-1])]


def _listing(result: tuple[int, str, str]) -> dict[str, str]:
    """name -> the rest of its `bench list` line."""
    code, out, err = result
    assert code == 0 and err == "", err
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in out.splitlines()}


def _one_line_error(result: tuple[int, str, str]) -> str:
    code, _, err = result
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory.mktemp("plugin"), PLUGIN, "0.3", PLUGIN_MODULE, PLUGIN_ENTRY_POINTS)


KINDS = ("attacks", "encoders", "tasks", "vlms")


@pytest.mark.long
def test_bench_list_names_each_plugin_entry_and_its_distribution(plugin_site):
    *tiny, paper = _bench(plugin_site, *(["list", what, "--suite", "tiny"] for what in KINDS),
                          ["list", "encoders", "--suite", "paper"])
    for what, result in zip(KINDS, tiny):
        listed = _listing(result)
        name = {"attacks": "plugin-fgsm-cw", "encoders": "plugin-clip", "tasks": "plugin-shape",
                "vlms": "plugin-llava"}[what]
        assert listed[name].startswith(f"{PLUGIN} 0.3 "), (what, listed[name])
        built_in = {"attacks": "apgd", "encoders": "fare-4", "tasks": "tiny-colour", "vlms": "tiny-llava"}[what]
        assert listed[built_in].startswith("built in "), listed[built_in]
    assert "FGSM, then PGD on the CW margin" in _listing(tiny[0])["plugin-fgsm-cw"]
    # The plugin joins the suites it chose: its tiny-clip encoder is not offered by the paper suite.
    paper_encoders = _listing(paper)
    assert "plugin-clip" not in paper_encoders and all(rest.startswith("built in ") for rest in paper_encoders.values())


@pytest.mark.long
def test_bench_run_uses_the_plugins_encoder_task_and_attack(plugin_site, tmp_path):
    out = tmp_path / "runs"
    common = ["run", "--suite", "tiny", "--encoder", "plugin-clip", "--task", "plugin-shape", "--attack",
              "plugin-fgsm-cw", "--eps", "4/255", "--n-samples", "4", "--steps", "3"]
    done, refused = _bench(plugin_site, [*common, "--out", str(out)],
                           [*common, "--attack-args", '{"step_sise": 0.1}', "--out", str(tmp_path / "refused")])
    assert done[0] == 0, done[2][-3000:]
    (run,) = [p for p in out.iterdir() if (p / CONFIG).is_file()]
    config = json.loads((run / CONFIG).read_text())
    assert (config["encoder"], config["task"], config["attack"]) == ("plugin-clip", "plugin-shape", "plugin-fgsm-cw")
    assert config["attack_members"] == ["plugin-fgsm", "pgd-cw"]
    records = read_records(run / "records.jsonl")
    assert len(records) == 4
    for r in records:
        assert r["linf"] <= 4 / 255 + 1e-6 and r["adv_score"] <= r["clean_score"]
        assert r["winner"] in (None, "clean", "plugin-fgsm", "pgd-cw")
    # Its --attack-args are checked against its cores' signatures, as a built-in attack's are.
    assert "--attack plugin-fgsm-cw has no argument 'step_sise'" in _one_line_error(refused)


@pytest.mark.long
def test_a_plugin_that_takes_a_built_in_name_is_one_line_naming_it(tmp_path):
    site = _install(tmp_path, "bench-plugin-clash", "1.0", CLASH_MODULE, CLASH_ENTRY_POINTS)
    attacks, tasks, run = _bench(site, ["list", "attacks"], ["list", "tasks"],
                                 ["run", "--attack", "aa", "--encoder", "clip", "--task", "tiny-colour", "--eps",
                                  "4/255", "--out", str(tmp_path / "r")])
    for result, kind, name in ((attacks, "attack", "apgd"), (tasks, "task", "tiny-vqa")):
        line = _one_line_error(result)
        assert line.startswith("error: plugin bench-plugin-clash 1.0 "), line
        assert f"registers {kind} {name!r}, a name already taken (built in)" in line
        assert "rename it in bench-plugin-clash" in line and line.endswith("pip uninstall bench-plugin-clash")
    # Refused wherever a registry is read, not only by bench list, and again on every later read.
    assert "plugin bench-plugin-clash 1.0" in _one_line_error(run)
    assert not (tmp_path / "r").exists()


@pytest.mark.long
def test_a_plugin_that_fails_to_import_is_one_line_and_only_when_used(tmp_path):
    site = _install(tmp_path, "bench-plugin-broken", "0.1", BROKEN_MODULE, BROKEN_ENTRY_POINTS)
    # Lazy: listing tasks reads neither the attacks nor the encoders registry, so it never imports the plugin.
    tasks, *broken = _bench(site, ["list", "tasks"], ["list", "attacks"], ["list", "encoders"])
    assert "tiny-colour" in _listing(tasks)
    for result, kind in zip(broken, ("attacks", "encoders")):
        line = _one_line_error(result)
        assert line.startswith(f"error: plugin bench-plugin-broken 0.1 (robust_vlm_bench.{kind}: broken = "), line
        assert "failed to import (ModuleNotFoundError: No module named 'bench_plugin_no_such_dependency')" in line
        assert line.endswith("pip uninstall bench-plugin-broken")


@pytest.mark.long
def test_no_plugin_installed_no_false_alarm():
    for result in _bench(None, *(["list", what] for what in ("attacks", "encoders", "tasks"))):
        listed = _listing(result)
        assert listed and all(rest.startswith("built in ") for rest in listed.values()), listed
