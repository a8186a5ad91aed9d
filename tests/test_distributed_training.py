"""Distributed training (torchrun / DistributedDataParallel, gloo on the CPU) equals one process."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from tests import ddp_helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_two_gloo_ranks_stay_identical_and_match_one_process(tmp_path):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.fail("this torch build has no gloo backend")
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp_dir.mkdir()
    single_dir.mkdir()
    mp.start_processes(ddp_helpers.rank_main, args=(2, _free_port(), str(ddp_dir / "run"), str(ddp_dir)),
                       nprocs=2, join=True, start_method="spawn")
    ddp_helpers.train(single_dir / "run", single_dir / "single.safetensors")

    rank0 = load_file(str(ddp_dir / "rank0.safetensors"))
    rank1 = load_file(str(ddp_dir / "rank1.safetensors"))
    single = load_file(str(single_dir / "single.safetensors"))
    start = ddp_helpers.initial_state()
    assert set(rank0) == set(single) == set(start)
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), f"ranks diverged at {key}"
    # Same updates as one process over the global batch. Adam divides by the gradient's running
    # RMS, so float-rounding differences of the all-reduce show up where gradients are ~0; the
    # test therefore compares whole update vectors: a wrong shard or a missing all-reduce moves
    # them by O(1) of their size, rounding by ~1e-3.
    ddp_update = torch.cat([(rank0[k] - start[k]).flatten() for k in sorted(single) if start[k].is_floating_point()])
    one_update = torch.cat([(single[k] - start[k]).flatten() for k in sorted(single) if start[k].is_floating_point()])
    assert one_update.norm() > 0
    relative = float((ddp_update - one_update).norm() / one_update.norm())
    assert relative < 0.01, f"distributed updates differ from one process by {relative:.3%}"
    # Only rank 0 wrote the run (checkpoint, log).
    assert (ddp_dir / "run" / "metrics.csv").read_text().count("\n") == ddp_helpers.STEPS + 1
    assert len(list((ddp_dir / "run" / "checkpoints").glob("ckpt-*"))) == 1
