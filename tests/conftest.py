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


@pytest.fixture(scope="session", autouse=True)
def every_record_the_tests_write_holds_the_invariants(tmp_path_factory):
    """After the session: every run folder `bench run` wrote during the tests (its config records the
    versions it ran with) is read back with the validated readers and each record checked
    (tasks.record_checks); the store already refuses a contradicting record at write time, this
    catches one written around it. The bad-input tests' hand-made folders (no versions; corrupt or
    contradicting on purpose) are not checked."""
    yield
    from bench.run.store import CONFIG, read_config, read_run_records
    from benchutil.errors import BenchError
    from tasks.record_checks import violations

    broken = []
    for config_path in tmp_path_factory.getbasetemp().rglob(CONFIG):
        try:
            config = read_config(config_path)
            records = read_run_records(config_path.parent)
        except BenchError:
            continue
        if "versions" not in config:
            continue
        broken += [(config_path.parent, r["id"], v) for r in records for v in violations(r, config["eps"],
                                                                                          config["norm"],
                                                                                          config.get("protocol"))]
    assert not broken, broken[:5]
