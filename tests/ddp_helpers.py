"""A tiny paired-training job run identically by one process or by ranks of a gloo group."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

STEPS = 3


def films(n: int = 6, size: int = 160) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:size, 0:size] / size
    return [np.clip(0.5 + 0.3 * np.sin(6 * xx + i) * np.cos(4 * yy) + 0.05 * rng.standard_normal((size, size)), 0, 1)
            .astype(np.float32) for i in range(n)]


def config():  # noqa: ANN201 - PairedConfig, imported lazily in the child process
    from core.train.paired import PairedConfig

    return PairedConfig(arch="convolutional-light", steps=STEPS, patch=64, patches=4, identity_patches=2,
                        stability_patches=2, films=2, film_every=1, image_size=128, load_size=160, amp=False,
                        checkpoint_every=1000, lr=1e-3)


def _weights(trainer) -> dict[str, torch.Tensor]:  # noqa: ANN001 - PairedTrainer, imported lazily
    return {k: v.detach().clone().contiguous() for k, v in trainer.net.state_dict().items()}


def train(run_dir: Path, out: Path) -> None:
    """Train STEPS steps; write this process's generator weights to ``out`` and those after the
    first step to ``first-<out name>``."""
    from core.train.distributed import init_from_env
    from core.train.paired import PairedData, PairedTrainer

    torch.set_num_threads(1)
    _, device = init_from_env(torch.device("cpu"))
    f = films()
    trainer = PairedTrainer(config(), PairedData(f, f, [0, 1, 0, 1, 0, 1]), run_dir, device)
    one_step = trainer.train_step

    def step_and_keep_the_first() -> dict[str, float]:
        losses = one_step()
        if trainer.step == 1:
            save_file(_weights(trainer), str(out.with_name(f"first-{out.name}")))
        return losses

    trainer.train_step = step_and_keep_the_first  # type: ignore[method-assign]
    trainer.fit(progress=False)
    save_file(_weights(trainer), str(out))


def initial_state() -> dict[str, torch.Tensor]:
    """The generator weights before the first step (same seed, same initialisation)."""
    from core.train.paired import PairedData, PairedTrainer

    f = films()
    trainer = PairedTrainer(config(), PairedData(f, f, [0, 1, 0, 1, 0, 1]), Path(os.devnull), torch.device("cpu"))
    return {k: v.clone() for k, v in trainer.net.state_dict().items()}


def rank_main(rank: int, world: int, port: int, run_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    try:
        train(Path(run_dir), Path(out_dir) / f"rank{rank}.safetensors")
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
