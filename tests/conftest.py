"""Shared test set-up: hypothesis profiles, the location of ../shared/data, the golden-file switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: one intra-op thread each, or they fight over the cores.
    import torch

    torch.set_num_threads(1)

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (or $SEMIASR_SHARED_DATA)."""
    env = os.environ.get("SEMIASR_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ instead of comparing with them",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(
            f"real speech corpora not found at {path} (they live in ../shared/data beside the repo)"
        )
    return path


@pytest.fixture(autouse=True)
def _denormals_as_ieee():
    """Every test starts and ends with subnormal floats kept (IEEE arithmetic). A CPU Trainer
    flushes them to zero while it fits (a training speed-up) and restores the mode after; a test
    that sets the mode itself, or a failure in between, must not reach whatever test runs next in
    the same pytest worker (the subnormal tests of the RNN-T loss failed that way, by order, when
    the Trainer still left flush-to-zero on)."""
    import torch

    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)
