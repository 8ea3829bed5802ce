"""What a run records about the software it ran on: versions and the git commit."""
from __future__ import annotations

import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("robust-vlm-bench", "torch", "torchvision", "open_clip_torch", "numpy")


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# Committed results live in the tree they describe: writing them does not make the code dirty.
OUTSIDE_CODE = ":(exclude)results"


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The project's commit: "<sha>" when the code is exactly that commit, "<sha>+dirty.<hash>" when
    tracked files outside results/ differ from it (hash: the first 12 hex digits of the sha256 of
    `git diff HEAD` over those files, so two runs made with the same edits carry the same tag), and
    "unknown" outside a git checkout (an installed wheel). Untracked files are not covered."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = _git(root, "rev-parse", "HEAD").strip()
        diff = _git(root, "diff", "HEAD", "--", ".", OUTSIDE_CODE)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not diff:
        return commit
    return f"{commit}+dirty.{hashlib.sha256(diff.encode()).hexdigest()[:12]}"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout
