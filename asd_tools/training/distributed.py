"""Multi-process training under ``torchrun`` or ``srun``: the process group, who writes, the gradient all-reduce.

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; under ``srun`` they come from Slurm's
``SLURM_STEP_NUM_TASKS``, ``SLURM_PROCID`` and ``SLURM_LOCALID`` (the rendezvous at the node that
launched the step, on a port from the job id). A process started any other way is a world of one, and
every function here is then a no-op, so the 1-process path stays the plain one.

The semantics, for both systems: N processes are N-fold gradient accumulation. Each process reads one
of every N batches of the epoch plan (every process computes the same plan), its gradients are
averaged over the processes before each optimiser step, and every batch's random draws are seeded
from (seed, epoch, batch index) (``Trainer``), so an N-process run equals a 1-process run with
``grad_accum`` multiplied by N. BatchNorm normalises each process's batch, as it normalises each
micro-batch under accumulation; the running statistics saved are the main process's. The averaging is
one all-reduce of all gradients in one flat buffer after the backward passes: it does not depend on
how a task calls the model (DG-Mix calls its parts, which ``DistributedDataParallel``'s hooks would
not see), at the cost of not overlapping communication with the backward pass.
"""

import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """The process that writes files, logs and validates (the only one outside torchrun)."""
    return rank() == 0


def slurm_environment(env=os.environ) -> dict:
    """torchrun's variables for a process of an ``srun`` step of several tasks ({} otherwise, and
    where torchrun set them already)."""
    if "WORLD_SIZE" in env or int(env.get("SLURM_STEP_NUM_TASKS", "1")) <= 1:
        return {}
    return {
        "WORLD_SIZE": env["SLURM_STEP_NUM_TASKS"],
        "RANK": env["SLURM_PROCID"],
        "LOCAL_RANK": env["SLURM_LOCALID"],
        "MASTER_ADDR": env.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"),
        "MASTER_PORT": str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000),
    }


def init(device: str) -> str:
    """Join the process group of torchrun or of an ``srun`` step (gloo on the CPU, NCCL on CUDA); returns
    this process's device (``cuda:<LOCAL_RANK>`` on CUDA). Other processes' INFO logging is silenced."""
    os.environ.update(slurm_environment())
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = torch.device(device).type == "cuda"
    if cuda:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    if not is_main():
        logging.getLogger().setLevel(logging.WARNING)
    logging.info(f"process group: {world_size()} processes ({dist.get_backend()}), this one on {device}")
    return device


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def broadcast_state(model: torch.nn.Module) -> None:
    """Every process starts from the main process's parameters and buffers."""
    if world_size() > 1:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)


def average_gradients(parameters) -> None:
    """Replace each gradient by its mean over the processes (one all-reduce of one flat buffer).

    A parameter that has a gradient in some processes only (a part that only some batches reach) counts
    as zero in the others; one that has none anywhere keeps none, so the optimiser skips it as it would
    in one process."""
    world = world_size()
    if world == 1:
        return
    parameters = [p for p in parameters if p.requires_grad]
    present = torch.tensor([p.grad is not None for p in parameters], dtype=torch.float32, device=parameters[0].device)
    dist.all_reduce(present)
    parameters = [p for p, n in zip(parameters, present.tolist()) if n > 0]
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
