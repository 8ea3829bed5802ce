"""Suites: a zoo of encoders + task datasets + default settings, selected with --suite."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.encoders import Encoder
from bench.encoders.load import EncoderSpec
from bench.encoders.zoo import paper_zoo
from bench.tiny.suite import (
    CLASSIFICATION_TASKS,
    tiny_datasets,
    tiny_retrieval_datasets,
    tiny_vlm_datasets,
    tiny_zoo,
    world_root,
)
from bench.tiny.text_tasks import tiny_text_datasets
from bench.vlm import VLMSpec, paper_vlms, tiny_vlms
from benchutil.errors import BenchError, unknown
from benchutil.paths import user_path
from benchutil.plugins import Plugin, load_on_first_use
from benchutil.registry import Registry
from tasks.base import Task
from tasks.clip_benchmark_order import DEFAULT_SAMPLE_ORDER, not_a_webdataset, sample_order
from tasks.datasets import DATASETS, DVD_ZERO_SHOT, DatasetSpec
from tasks.imagefolder import read_image_folder
from tasks.retrieval import RetrievalTask
from tasks.retrieval_data import RETRIEVAL_DATASETS, RetrievalSpec
from tasks.target_seeds import TARGETED_SAMPLES
from tasks.text_datasets import TEXT_DATASETS, TextTaskSpec
from tasks.vlm_datasets import VLM_DATASETS, VLMTaskSpec
from tasks.zeroshot import ZeroShotTask


def config_file() -> Path:
    """$XDG_CONFIG_HOME/robust-vlm-bench/config.json, read when asked (an unset or empty
    XDG_CONFIG_HOME means ~/.config, as XDG says)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "robust-vlm-bench" / "config.json"


@dataclass(frozen=True)
class Suite:
    name: str
    encoders: Registry[EncoderSpec]
    datasets: Registry[DatasetSpec]
    default_tasks: tuple[str, ...]
    default_n_samples: int
    data_root: Callable[[str | None], Path]
    vlm_datasets: Registry[VLMTaskSpec]
    vlms: Callable[[], Registry[VLMSpec]]  # built on first use: it imports transformers
    default_vlm: str
    default_vlm_samples: int
    default_protocol: str = "strict"  # captioning / VQA: robustvlm | strict (bench run --protocol)
    samples_per_task: dict[str, int] = field(default_factory=dict)  # exceptions to the defaults
    # The zero-shot protocol's per-member attack defaults (recorded in every run's config).
    zero_shot_member_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Captioning / VQA under --target: how many samples (None: as untargeted).
    default_targeted_samples: int | None = None
    # Zero-shot image-text retrieval (encoder only, no VLM): tasks/retrieval.py.
    retrieval_datasets: Registry[RetrievalSpec] = field(default_factory=lambda: Registry("task"))
    # Text tasks (sentences attacked with character edits, --norm levenshtein): tasks/text_datasets.py.
    text_datasets: Registry[TextTaskSpec] = field(default_factory=lambda: Registry("task"))
    # --task names that stand for a list of tasks (a paper's protocol): group -> its tasks, in order.
    task_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def task_names(self) -> list[str]:
        return [*self.datasets.names(), *self.vlm_datasets.names(), *self.retrieval_datasets.names(),
                *self.text_datasets.names()]

    def is_text_task(self, name: str) -> bool:
        return name in self.text_datasets

    def is_vlm_task(self, name: str) -> bool:
        return name in self.vlm_datasets

    def is_retrieval_task(self, name: str) -> bool:
        return name in self.retrieval_datasets

    def default_samples(self, task: str, target: str | None = None, order: str = DEFAULT_SAMPLE_ORDER) -> int:
        task = self.datasets.resolve(task)  # aliases (imagenet -> imagenet1k)
        if order != DEFAULT_SAMPLE_ORDER and task in self.datasets:
            # ΔCLIP's protocol: --n_samples 1000 for every dataset, ImageNet's webdataset included
            return self.default_n_samples
        if task in self.samples_per_task:
            return self.samples_per_task[task]
        if self.is_vlm_task(task) and target is not None and self.default_targeted_samples is not None:
            return self.default_targeted_samples
        return self.default_vlm_samples if self.is_vlm_task(task) else self.default_n_samples


def configured_data_root(flag: str | None) -> Path:
    """--data-root, else $BENCH_DATA, else "data_root" in the config file."""
    if flag:
        return user_path(flag, "--data-root")
    if os.environ.get("BENCH_DATA"):
        return user_path(os.environ["BENCH_DATA"], "BENCH_DATA")
    config = config_file()
    root = _configured_root(config) if config.is_file() else None
    if root:
        return user_path(root, f"data_root of {config}")
    raise BenchError(f"no data root for the paper suite: pass --data-root DIR, set BENCH_DATA, or put "
                     f'{{"data_root": DIR}} in {config}; offline, use --suite tiny')


def _configured_root(config: Path) -> str | None:
    """"data_root" of the config file: a JSON object whose data_root, when present, is a path."""
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        reason = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8 text"
        raise BenchError(f"config file {config} is not valid JSON ({reason}); fix or remove it") from None
    root = settings.get("data_root") if isinstance(settings, dict) else None
    if not isinstance(settings, dict) or not isinstance(root, (str, type(None))):
        raise BenchError(f'config file {config} must be a JSON object like {{"data_root": "/data"}}; fix or remove it')
    return root


def _call_register(register: Any, plugin: Plugin, suite_name: str) -> None:
    """An encoders / tasks / vlms entry point names `register(suite)`, called once per suite: it adds
    with the in-tree calls (suite.encoders.add, suite.datasets.add, suite.vlms().add, ...) where it fits."""
    if not callable(register):
        raise plugin.error(f"names an object of type {type(register).__name__!r}, not a function register(suite)",
                           "point it at one")
    register(get_suite(suite_name))


def _with_plugins(suite: Suite) -> None:
    """Installed packages' encoders and tasks join the suite the first time those are read."""
    def call(register: Any, plugin: Plugin) -> None:
        _call_register(register, plugin, suite.name)

    load_on_first_use("encoders", [suite.encoders], call, suite.name)
    load_on_first_use("tasks", [suite.datasets, suite.vlm_datasets, suite.retrieval_datasets, suite.text_datasets],
                      call, suite.name)


def _plugin_vlms(suite_name: str, built_in: Callable[[], Registry[VLMSpec]]) -> Callable[[], Registry[VLMSpec]]:
    """The suite's VLMs, installed packages' joining on first use (built on first use: transformers)."""
    def vlms() -> Registry[VLMSpec]:
        registry = built_in()
        load_on_first_use("vlms", [registry], lambda register, plugin: _call_register(register, plugin, suite_name),
                          suite_name)
        return registry

    return vlms


SUITES: Registry[Suite] = Registry("suite")
SUITES.add("tiny", Suite("tiny", tiny_zoo(), tiny_datasets(), CLASSIFICATION_TASKS, 100, world_root,
                         tiny_vlm_datasets(), _plugin_vlms("tiny", tiny_vlms), "tiny-llava", 100,
                         retrieval_datasets=tiny_retrieval_datasets(), text_datasets=tiny_text_datasets()),
           "embedded, offline, minutes on a CPU: a generated world of shapes, a tiny CLIP zoo and tiny-llava")
# RobustVLM's zero-shot protocol (CLIP_benchmark + AutoAttack version="custom"): APGD-CE with
# AutoAttack's default 5 restarts, then APGD-T; 1000 samples per dataset, 5000 for ImageNet.
# Retrieval: the whole Karpathy test split, as CLIP_benchmark evaluates it (COCO 5000, Flickr30k 1000).
SUITES.add("paper", Suite("paper", paper_zoo(), DATASETS, ("imagenet1k",), 1000, configured_data_root,
                          VLM_DATASETS, _plugin_vlms("paper", paper_vlms), "llava-1.5-7b", 500,
                          default_protocol="robustvlm",
                          samples_per_task={"imagenet1k": 5000, "coco-retrieval": 5000,
                                            # POPE and ScienceQA-IMG: LLaVA's eval scripts score every question
                                            "pope": 8910, "pope-random": 2910, "pope-popular": 3000,
                                            "pope-adversarial": 3000, "scienceqa": 2017},
                          zero_shot_member_args={"apgd-ce": {"restarts": 5}},
                          default_targeted_samples=TARGETED_SAMPLES, retrieval_datasets=RETRIEVAL_DATASETS,
                          text_datasets=TEXT_DATASETS,
                          # ΔCLIP's zero-shot list (its CLIP_benchmark/benchmark/webdatasets.txt, less the
                          # multilabel voc2007_multilabel); with --sample-order dvd, its protocol
                          task_groups={"dvd-zero-shot": DVD_ZERO_SHOT}),
           "full scale (GPU): the papers' zoo and the robust encoders since (ΔCLIP, LEAF, QT-AFT) from the hub, "
           "ImageNet + CLIP_benchmark datasets, COCO, Flickr30k, VQAv2, TextVQA, VizWiz, OK-VQA, POPE, ScienceQA; "
           "LLaVA-1.5-7B, Δ²LLaVA, OpenFlamingo-9B")
for _suite in SUITES:
    _with_plugins(_suite.value)
DEFAULT_SUITE = "tiny"


def get_suite(name: str | None) -> Suite:
    return SUITES.get(name or DEFAULT_SUITE).value


def suite_of_task(name: str) -> Suite:
    """The suite that defines a task (task names are unique across suites)."""
    for entry in SUITES:
        if name in entry.value.task_names() or name in entry.value.datasets:
            return entry.value
    raise unknown("task", name, [t for entry in SUITES for t in entry.value.task_names()], " (bench list tasks)")


FOLDER_PREFIX = "folder:"


ALL_TASKS = "all"


def expand_tasks(suite: Suite, names: list[str] | None) -> list[str]:
    """No --task: the suite's classification defaults; 'all': every classification, VLM and retrieval task
    (every task a pixel attack applies to: text tasks, attacked with character edits, are named one by one);
    a group of the suite (dvd-zero-shot): its tasks."""
    if not names:
        return list(suite.default_tasks)
    out: list[str] = []
    registries = (suite.datasets, suite.vlm_datasets, suite.retrieval_datasets)
    for name in names:
        if name == ALL_TASKS:
            out += [e.name for registry in registries for e in registry]
        else:
            out += list(suite.task_groups.get(name, (name,)))
    return list(dict.fromkeys(out))


def check_task_name(suite: Suite, name: str, order: str = DEFAULT_SAMPLE_ORDER) -> None:
    check_sample_order(suite, name, order)
    if name.startswith(FOLDER_PREFIX):
        folder_root(name)
        return
    if suite.is_vlm_task(name) or suite.is_retrieval_task(name) or suite.is_text_task(name):
        return
    if name not in suite.datasets:
        raise unknown("task", name, suite.task_names(), " (bench list tasks)")


def check_sample_order(suite: Suite, name: str, order: str) -> None:
    """A --sample-order other than the default only for tasks read from CLIP_benchmark webdatasets."""
    if sample_order(order).name == DEFAULT_SAMPLE_ORDER:
        return
    spec = None if name.startswith(FOLDER_PREFIX) or name not in suite.datasets else suite.datasets.get(name).value
    if spec is None or (spec.benchmark_name or spec.order_benchmark_name) is None:
        raise not_a_webdataset(order, name)


def folder_root(name: str) -> Path:
    """folder:PATH -> PATH. An empty PATH is refused: Path("") is the working folder, which
    would be evaluated (or trained on) without the user having named it."""
    text = name.removeprefix(FOLDER_PREFIX)
    if not text:
        raise BenchError(f"--task {name!r} names no folder; write folder:PATH, e.g. folder:/data/my_images "
                         "(folder:. for the current folder)")
    return user_path(text, "--task folder:")


def load_task(suite: Suite, name: str, data_root: str | None, order: str = DEFAULT_SAMPLE_ORDER) -> Task:
    """A suite task by name (classification, captioning, VQA, retrieval), or any image folder as folder:PATH.

    order: the --sample-order of CLIP_benchmark's webdatasets (tasks/clip_benchmark_order.py SAMPLE_ORDERS);
    a task that is not one refuses any but the default."""
    check_sample_order(suite, name, order)
    picked = sample_order(order)
    if name.startswith(FOLDER_PREFIX):
        root = folder_root(name)
        # 'folder:.' has no name of its own: the folder's real name names its runs
        task_name = root.name or root.resolve().name or str(root)
        return ZeroShotTask(read_image_folder(root, task_name, user_folder=True), suite.zero_shot_member_args)
    if suite.is_vlm_task(name):
        vlm_spec = suite.vlm_datasets.get(name)
        return vlm_spec.value.read(vlm_spec.name, suite.data_root(data_root))
    if suite.is_text_task(name):
        text_spec = suite.text_datasets.get(name)
        return text_spec.value.read(text_spec.name, suite.data_root(data_root))
    if suite.is_retrieval_task(name):
        retrieval_spec = suite.retrieval_datasets.get(name)
        return RetrievalTask(retrieval_spec.value.read(retrieval_spec.name, suite.data_root(data_root)))
    spec = suite.datasets.get(name)
    task = ZeroShotTask(spec.value.read(spec.name, suite.data_root(data_root), picked.name),
                        suite.zero_shot_member_args, spec.value.native_resolution and picked.native_resolution)
    if picked.name != DEFAULT_SAMPLE_ORDER:  # the default is left unrecorded: earlier runs keep their identity
        task.settings["sample_order"] = picked.name
    return task


def resolve_encoder(name_or_path: str, suite: str | None = None, arch: str | None = None,
                    base: str | None = None) -> tuple[EncoderSpec, str]:
    """(what to load, the name to record) for a zoo name, an open_clip tag, a hub id or a path.

    base: the model a vision-only checkpoint was fine-tuned from (a zoo name or a source);
    its text tower (and architecture, unless `arch` says otherwise) completes the checkpoint.
    """
    from bench.encoders.load import spec_for_source, with_architecture, with_base
    from bench.encoders.sources import is_source

    zoo = get_suite(suite).encoders
    if name_or_path in zoo:
        if base is not None:
            raise BenchError(f"--base applies to checkpoint files; {name_or_path!r} is a zoo encoder with its own base")
        entry = zoo.get(name_or_path)
        return with_architecture(entry.value, arch), entry.name
    if not is_source(name_or_path):
        raise unknown("encoder", name_or_path, zoo.names(), " (bench list encoders, or give a checkpoint path)")
    if base is None:
        return spec_for_source(name_or_path, arch), name_or_path
    base_spec, _ = resolve_encoder(base, suite, arch)
    return with_base(spec_for_source(name_or_path, arch or base_spec.architecture), base_spec), name_or_path


def load_encoder(name_or_path: str, suite: str | None = None, device: str = "cpu",
                 arch: str | None = None, base: str | None = None) -> Encoder:
    """An encoder from the suite's zoo, an open_clip tag, a hub id or a checkpoint file.

    Returns a pixel-space model ([0,1] NCHW in, normalisation inside) with encode_image,
    encode_text, tokenizer, image_size and provenance (source, sha256).
    """
    from bench.encoders.load import build_encoder

    spec, name = resolve_encoder(name_or_path, suite, arch, base)
    return build_encoder(spec, name, device)
