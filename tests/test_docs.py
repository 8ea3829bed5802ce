"""The examples in README.md and docs/*.md are tests, so the documentation cannot drift from the code.

Every fenced block whose info string starts with bash, sh, console or python becomes one pytest item,
named after its file and the line of its opening fence (`docs/commands.md:42`). Words after the
language are markers for blocks that cannot run here:

    ```bash paper     needs the paper suite's data (and its weights)
    ```bash gpu       needs CUDA
    ```bash slow      runs on the tiny suite but takes minutes (up to an hour)
    ```bash long      runs on the tiny suite in tens of seconds: CI runs it (`pytest -m long`)
    ```bash no-run    a template with placeholders, or a fragment that is not a command

A marked block gets the pytest mark of that name (`no-run` -> `no_run`); pyproject's addopts deselect
all five by default, so such blocks show up as deselected, never as skipped, `pytest -m long` runs
the long ones (as CI does, after the default run) and `pytest -m slow tests/test_docs.py` the slow
ones. Every other block is executed:

* bash / sh: `bash -euo pipefail -c BLOCK`; console: the `$ ` lines (and their continuations) the
  same way, the output lines are not compared;
* python: exec in a fresh namespace, in this process.

Each block runs in its own temporary working directory that mirrors the repository's top level with
links, so relative paths such as `results/tiny/runs` work, and the new files a block writes (`runs/`,
`site/`, a plot) land in the temporary folder, never in the repository. `bench` is the
venv's (its bin folder leads PATH), HF_HUB_OFFLINE=1, and BENCH_HOME is this session's
(tests/conftest.py), so the tiny world is generated once for the session.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("bash", "sh", "console", "python")
MARKERS = {  # info-string word -> pytest mark
    "paper": "paper",
    "gpu": "gpu",
    "slow": "slow",
    "long": "long",
    "no-run": "no_run",
}
SHELL_TIMEOUT_S = 600  # a default-run block; `slow` blocks (the full re-runs take an hour) get none
# an opening or closing fence (CommonMark: up to 3 spaces of indent, 3+ backticks or tildes)
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str
    words: tuple[str, ...]  # the info string's words after the language
    code: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def marks(self) -> list[str]:
        return [MARKERS[w] for w in self.words if w in MARKERS]

    @property
    def unknown_words(self) -> list[str]:
        return [w for w in self.words if w not in MARKERS]


def fenced_blocks(path: Path) -> list[Block]:
    """The file's fenced code blocks in the languages above, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        words = opening["info"].split()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence) \
                    and not closing["info"].strip():
                break
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            j += 1
        if words and words[0] in LANGUAGES:
            blocks.append(Block(path.relative_to(ROOT).as_posix(), i + 1, words[0], tuple(words[1:]),
                                "\n".join(body) + "\n"))
        i = j + 1
    return blocks


BLOCKS = [block for path in doc_files() for block in fenced_blocks(path)]
PARAMS = [pytest.param(block, id=block.id, marks=[getattr(pytest.mark, m) for m in block.marks]) for block in BLOCKS]


def _pytest_options() -> tuple[list[str], str]:
    """(markers, addopts) of [tool.pytest.ini_options] in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10
        section = text.split("[tool.pytest.ini_options]", 1)[1]
        markers = re.findall(r'^\s*"([^"]+)",?\s*$', section.split("markers", 1)[1].split("]", 1)[0], re.M)
        return markers, re.search(r'^addopts\s*=\s*"(.*)"\s*$', section, re.M)[1]
    options = tomllib.loads(text)["tool"]["pytest"]["ini_options"]
    return options["markers"], options["addopts"]


# ---- the collection itself ----------------------------------------------------------------------

def test_every_block_is_an_item():
    """Counted a second, simpler way: every opening fence in one of the languages is one item."""
    opening = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*(" + "|".join(LANGUAGES) + r")(\s|$)")
    counted = sum(1 for path in doc_files()
                  for line in path.read_text(encoding="utf-8").splitlines() if opening.match(line))
    assert counted == len(PARAMS) > 0
    ids = [param.id for param in PARAMS]
    assert len(set(ids)) == len(ids)
    for param, block in zip(PARAMS, BLOCKS):
        assert param.values == (block,) and sorted(m.name for m in param.marks) == sorted(block.marks)


def test_markers_are_known_and_deselected_by_default():
    """A typo in a marker (```bash slwo) would run the block; an unregistered or undeselected mark would
    skip it silently or run it by default."""
    unknown = {block.id: block.unknown_words for block in BLOCKS if block.unknown_words}
    assert not unknown, f"unknown words in info strings (known: {sorted(MARKERS)}): {unknown}"
    markers, addopts = _pytest_options()
    registered = {m.split(":")[0].strip() for m in markers}
    for mark in MARKERS.values():
        assert mark in registered
        assert f"not {mark}" in addopts


def test_readme_starts_with_the_two_commands():
    """CI (.ci/run) runs the line after `# 2. run the tests`; the block installs, so it is not run here."""
    first = fenced_blocks(ROOT / "README.md")[0]
    assert first.language == "bash" and "no-run" in first.words
    lines = first.code.splitlines()
    assert lines[lines.index("# 2. run the tests") + 1] == "HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q"


# ---- links between the pages ----------------------------------------------------------------------

def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    anchors = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_relative_links_resolve():
    """Every relative link (and image) in README.md and docs/ names an existing file, and its #anchor a
    heading of that page: pages that move or headings that change cannot leave dead links."""
    dead = []
    for path in doc_files():
        text = re.sub(r"(?ms)^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1\s*$", "", path.read_text(encoding="utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                dead.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                dead.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not dead, "\n".join(dead)


# ---- the flags every documented command uses exist ---------------------------------------------

def _commands(block: Block) -> list[list[str]]:
    """`bench SUB ARGS` invocations in a shell block (also `.venv/bin/bench`, `-m bench`), as tokens."""
    text = block.code
    if block.language == "console":
        text = "\n".join(line[2:] for line in text.splitlines() if line.startswith("$ "))
    text = re.sub(r"\\\n", " ", text)
    found = []
    for line in text.splitlines():
        line = line.split(" # ")[0] if not line.lstrip().startswith("#") else ""
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                tokens = shlex.split(part)
            except ValueError:
                continue
            for k, token in enumerate(tokens):
                if Path(token).name == "bench" and (k == 0 or tokens[k - 1] in {"-m", "do", "then", "time"}
                                                   or re.fullmatch(r"[A-Z_]+=\S*", tokens[k - 1])):
                    found.append(tokens[k + 1:])
                    break
    return found


def _help(sub: str | None) -> str:
    """`bench [SUB] --help` as the command prints it, from its own parser in this process (a process per
    subcommand cost most of a minute; the `bench` executable itself is run by the blocks)."""
    import contextlib
    import io

    from bench.cli.main import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*([sub] if sub else []), "--help"])
    return out.getvalue()


def test_documented_commands_use_real_subcommands_and_flags():
    """Every `bench` command in any block, marked or not, names a real subcommand and real options:
    the paper-suite and GPU examples that never run here cannot drift either."""
    used: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for block in BLOCKS:
        if block.language == "python":
            continue
        for tokens in _commands(block):
            if not tokens:
                continue
            sub = tokens[0]
            used.setdefault(sub, set())
            where.setdefault((sub, ""), block.id)
            for token in tokens[1:]:
                flag = token.lstrip("[").split("=")[0].rstrip("]")
                if flag.startswith("--"):
                    used[sub].add(flag)
                    where.setdefault((sub, flag), block.id)
    top = _help(None)
    subcommands = set(re.search(r"\{([a-z,]+)\}", top)[1].split(","))
    problems = [f"{where[(sub, '')]}: bench {sub} is not a subcommand" for sub in used if sub not in subcommands]
    for sub in sorted(set(used) & subcommands):
        options = set(re.findall(r"--[a-z][a-z0-9-]*", _help(sub)))
        problems += [f"{where[(sub, flag)]}: bench {sub} has no {flag}" for flag in sorted(used[sub] - options)]
    assert not problems, "\n".join(problems)


# ---- running the blocks ---------------------------------------------------------------------------

def _venv_bin() -> Path:
    here = Path(sys.executable).parent
    return here if (here / "bench").exists() else ROOT / ".venv" / "bin"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{_venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    if "BENCH_HOME" in os.environ:  # tests/conftest.py sets this session's
        env["BENCH_HOME"] = os.environ["BENCH_HOME"]
    return env


def _mirror(source: Path, target: Path, depth: int) -> None:
    """target: a real folder whose entries link to source's, `depth` levels of folders deep. A file a
    block writes at those levels is new and lies in the temporary folder; the links cost no copying."""
    target.mkdir()
    for entry in source.iterdir():
        if entry.name in {"out", "__pycache__"} or entry.name.startswith(".") or entry.name.endswith(".egg-info"):
            continue
        if depth > 1 and entry.is_dir() and not entry.is_symlink():
            _mirror(entry, target / entry.name, depth - 1)
        else:
            (target / entry.name).symlink_to(entry)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A working directory that looks like the repository's root, so relative paths such as
    results/tiny/runs work: each top-level folder is a real folder of links to its entries (results/
    two levels deep), and there is no runs/. Blocks write only new paths (runs/, site/, *.png), which
    land in the temporary folder."""
    work = tmp_path / "work"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name == "runs" or entry.name.endswith(".egg-info"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            _mirror(entry, work / entry.name, 2 if entry.name == "results" else 1)
        else:
            (work / entry.name).symlink_to(entry)
    monkeypatch.chdir(work)
    return work


def _console_script(code: str) -> str:
    commands: list[str] = []
    continuing = False
    for line in code.splitlines():
        if line.startswith("$ ") or continuing:
            text = line[2:] if line.startswith("$ ") and not continuing else line
            commands.append(text)
            continuing = text.rstrip().endswith("\\")
    return "\n".join(commands) + "\n"


def test_console_blocks_run_their_prompt_lines():
    assert _console_script("$ bench list \\\n    suites\noutput line\n$ true\n") == "bench list \\\n    suites\ntrue\n"


@pytest.mark.parametrize("block", PARAMS)
def test_block(block: Block, workdir: Path, monkeypatch):
    assert not block.unknown_words, f"unknown marker {block.unknown_words} (known: {sorted(MARKERS)})"
    if block.language == "python":
        for key, value in _env().items():
            monkeypatch.setenv(key, value)
        exec(compile(block.code, block.id, "exec"), {"__name__": "__docs__"})  # noqa: S102
        return
    script = _console_script(block.code) if block.language == "console" else block.code
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=_env(),
                          capture_output=True, text=True,
                          timeout=None if "slow" in block.marks else SHELL_TIMEOUT_S)
    assert done.returncode == 0, (f"{block.id} exited {done.returncode}\n--- script\n{script}"
                                  f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}")
