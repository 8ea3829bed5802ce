"""A plain classifier (images in [0,1] -> logits over its own classes) as a classification victim.

Zero-shot tasks build their classifier from an encoder's text tower; a model that already is a
classifier (RobustBench's kind: `model(x) -> logits`) brings its class names instead. The task's
classes are matched to the model's by name, so a dataset may list them in another order; every
task class must be among the model's, and the model must not have others (argmax over a class the
dataset cannot contain would count as an error the dataset never tests).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchutil.errors import BenchError


class LabelledClassifier(nn.Module):
    """`model(images) -> logits` with the names of its logits, its input size and its provenance.

    Images arrive in [0,1] at `image_size`; any normalisation belongs inside `model`, so eps
    stays in pixel units.
    """

    def __init__(self, model: nn.Module, class_names: Sequence[str], image_size: int, provenance: Any) -> None:
        super().__init__()
        if len(set(class_names)) != len(class_names):
            raise BenchError("class_names repeats a name; give each logit's class once")
        self.model = model
        self.class_names = list(class_names)
        self.image_size = image_size
        self.provenance = provenance

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def for_classes(self, classnames: Sequence[str], task: str) -> ClassOrder:
        """The victim of a task whose label k is classnames[k]."""
        missing = [c for c in classnames if c not in self.class_names]
        extra = [c for c in self.class_names if c not in classnames]
        if missing or extra:
            problem = (f"lacks the class {missing[0]!r}" if missing else f"has the class {extra[0]!r} that "
                       f"{task} does not")
            raise BenchError(f"the classifier's class_names do not match {task}'s classes: it {problem}; give "
                             f"class_names in the order of its logits, the same {len(classnames)} classes as "
                             f"{task}")
        device = next(itertools.chain(self.parameters(), self.buffers()), torch.empty(0)).device
        return ClassOrder(self, [self.class_names.index(c) for c in classnames]).to(device)


class ClassOrder(nn.Module):
    """The classifier's logits reordered into a task's label order; inputs resized to its size."""

    def __init__(self, classifier: LabelledClassifier, order: list[int]) -> None:
        super().__init__()
        self.classifier = classifier
        self.register_buffer("order", torch.tensor(order), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        size = self.classifier.image_size
        if x.shape[-2:] != (size, size):  # as ZeroShotClassifier: a dataset at its own resolution
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
        return self.classifier(x)[:, self.order]
