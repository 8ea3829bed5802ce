import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests never touch the user's cache: the tiny world is generated into a fresh BENCH_HOME.
os.environ["BENCH_HOME"] = tempfile.mkdtemp(prefix="bench-home-")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests import victims  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """(model, x, y): the trained digits CNN and 64 test images it mostly gets right."""
    model = victims.digits_cnn()
    _, _, x, y = victims.digits_data()
    return model, x[:64].clone(), y[:64].clone()


@pytest.fixture(scope="session")
def vit():
    """(model, x, y): a random tiny open_clip ViT zero-shot classifier; y = its clean predictions."""
    model = victims.tiny_vit_classifier()
    x = victims.natural_images(48, 32, seed=1)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y


def robust_acc(model, x_adv, y) -> float:
    with torch.no_grad():
        return float((model(x_adv).argmax(dim=1) == y).float().mean())
