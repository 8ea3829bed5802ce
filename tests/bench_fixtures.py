"""Real files in the real formats for the bench tests: image folders and open_clip checkpoints; and
the run folders bench run wrote, read back."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file

import bench.encoders.load  # noqa: F401  (registers the project's open_clip configs)
from bench.run.store import CONFIG, read_config, read_run_records

ARCH = "tiny-vit-test"
CLASSES = ["red square", "green circle", "blue triangle", "yellow cross"]


def make_image_folder(root: Path, per_class: int = 6, size: int = 40, seed: int = 0) -> Path:
    """root/<class>/<i>.png with classnames.txt and templates.txt, deterministic."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = (rng.random((size, size + 8, 3)) * 255).astype(np.uint8)
            arr[8:24, 8:24] = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)][c]
            Image.fromarray(arr).save(folder / f"{i:03d}.png")
    (root / "classnames.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "templates.txt").write_text("a photo of a {}.\na drawing of a {}.\n")
    return root


def random_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return open_clip.create_model(ARCH, pretrained=None).eval()


def save_full_safetensors(model: torch.nn.Module, path: Path) -> Path:
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"architecture": ARCH})
    return path


def save_full_pickle(model: torch.nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    (path.with_suffix(".json")).write_text(json.dumps({"architecture": ARCH}))
    return path


def save_vision_pickle(model: torch.nn.Module, path: Path, base: Path) -> Path:
    """The RobustVLM / Sim-CLIP layout: the VisionTransformer state dict without prefix."""
    torch.save(model.visual.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({"architecture": ARCH, "base": str(base)}))
    return path


def save_vision_safetensors(model: torch.nn.Module, path: Path, base: Path) -> Path:
    state = {k: v.contiguous() for k, v in model.visual.state_dict().items()}
    save_file(state, str(path), metadata={"architecture": ARCH, "base": str(base)})
    return path


def folder_and_checkpoint(root: Path, per_class: int) -> tuple[Path, Path]:
    """An image-folder dataset and a random tiny open_clip checkpoint under root."""
    data = make_image_folder(root / "shapes", per_class=per_class)
    return data, save_full_safetensors(random_model(seed=0), root / "tiny.safetensors")


def kill_when_exists(proc: subprocess.Popen, path: Path, timeout: float = 300) -> None:
    """SIGKILL proc the moment path appears: a crash right after its first checkpoint."""
    import signal
    import time

    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def runs_of(out: Path) -> dict[str, tuple[dict, list[dict]]]:
    """"<task> <eps label>" -> (config, records) of every run folder under out."""
    found = {}
    for path in sorted(out.glob(f"*/{CONFIG}")):
        config = read_config(path)
        found[f"{config['task']} {config['eps_label']}"] = (config, read_run_records(path.parent))
    return found
