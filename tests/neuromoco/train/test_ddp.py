"""Two-process DDP on CPU (gloo): shuffle-BN across ranks, keys gathered into one queue, equal replicas."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neuromoco.ssl.shuffle import concat_all_gather, shuffle_batch, unshuffle_batch
from neuromoco.train.trainer import Trainer
from train_helpers import stage_data, tiny_config

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)  # two processes share the CI machine's cores
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(rank)
        x = torch.randn(2, 3, 5) + 10 * rank  # (T, B, ...), different on each rank
        shuffled, undo = shuffle_batch(x)
        assert torch.equal(unshuffle_batch(shuffled, undo), x)
        everything = concat_all_gather(x, dim=1)
        assert sorted(concat_all_gather(shuffled, dim=1).flatten().tolist()) == sorted(everything.flatten().tolist())

        # 16 samples, 4 per rank and step: two DDP steps.
        trainer = Trainer(tiny_config(out, epochs=1, knn_every=0), stage_data(train_count=16))
        summary = trainer.fit()
        assert summary["world_size"] == WORLD and trainer.global_step == 2
        assert trainer.moco is not None
        assert int(trainer.moco.queue_ptr) == (2 * 4 * WORLD) % 12
        params = torch.cat([p.detach().flatten() for p in trainer.moco.parameters()])
        for tensor in (params, trainer.moco.queue.flatten()):
            copies = concat_all_gather(tensor[None], dim=0)
            assert torch.equal(copies[0], copies[1]), "replicas diverged"
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_pretraining(tmp_path):
    out = tmp_path / "ddp"
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "summary.json").is_file()
