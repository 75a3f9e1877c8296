"""Fixtures of the trainer's tests: the toy model/loader module (``train_toy.py``), loaded once."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOY_PATH = Path(__file__).with_name("train_toy.py")


def _load_toy() -> ModuleType:
    name = "semiasr_tests_train_toy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOY_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def toy() -> ModuleType:
    return _load_toy()


@pytest.fixture
def toy_args(toy: ModuleType) -> argparse.Namespace:
    """The toy script's defaults (AdamW, dropout, augmentation), to override per test."""
    return toy.parser().parse_args([])


@pytest.fixture
def make_trainer(toy: ModuleType, tmp_path: Path):
    """``make_trainer(args, name, resume=False, objective=None, evaluate=None, stateful=True,
    nan_batches=(), **train_config) -> (trainer, model, loader)``, all on the CPU in fp32."""
    from semiasr.rundir import open_run_dir
    from semiasr.train import TrainConfig, Trainer

    def make(
        args,
        name="run",
        resume=False,
        objective=None,
        evaluate=None,
        stateful=True,
        nan_batches=(),
        **overrides,
    ):
        model, opt, sched, loader = toy.build(args)
        loader.nan_batches = frozenset(nan_batches)
        if not stateful:
            del loader.state_dict, loader.load_state_dict
        fields = dict(
            max_steps=args.max_steps,
            accum_steps=args.accum,
            grad_clip=args.grad_clip,
            precision="fp32",
            log_every=1,
            eval_every=0,
            ckpt_every=args.ckpt_every,
            keep_last=100,
            progress=False,
        )
        fields.update(overrides)
        run = open_run_dir(tmp_path, name, "toy: true\n", mode="resume" if resume else "new")
        trainer = Trainer(
            model,
            objective or toy.toy_objective,
            opt,
            sched,
            loader,
            TrainConfig(**fields),
            run,
            evaluate=evaluate,
            device="cpu",
        )
        return trainer, model, loader

    return make


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded (and like the subprocesses, OMP_NUM_THREADS=1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
