"""Benchmark a registered system on a dumped data set and print figures (no test asserts on them).

Measures, for one machine type and a config (its ``system:`` picks the figures; ``--system`` must agree):
  System 1 (serial_oe): data loader alone (samples/s; also the per-item reference loader and the ratio),
  training steps with the real loader and with one batch already on the device (samples/s, with AMP on
  CUDA; their ratio gives the loader's share of a step), embedding extraction (windows/s), the detector
  stage (seconds), peak memory. DG-Mix: pre-training steps (samples/s), peak memory. Any other system:
  its training stage and its embedding of every checkpoint through the System interface (seconds).

  python -m asd_tools.bin.benchmark --config conf/tuning/asd_model.000.yaml \
      --dumpdir dump/synthetic_small --machine fan --machines "bearing fan ..." [--device cuda]
"""

import resource
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from asd_tools.backend.detect import run_detectors
from asd_tools.backend.embeddings import Embeddings
from asd_tools.bin.common import best_device, bool_arg, machines_arg, parser, run
from asd_tools.config import load_config
from asd_tools.data.corpus import Corpus
from asd_tools.systems.extract import extract
from asd_tools.systems.registry import SYSTEMS, system_name
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.recipe import build_trainer, model_outputs_to_features
from asd_tools.training.classes import read_classes, resolve_class_target


def device_figures(device):
    """The device's name and the peak host (and GPU) memory so far."""
    figures = {
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "peak_host_memory_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if device.startswith("cuda"):
        figures["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return figures


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def loader_throughput(batches, steps):
    """Samples per second of the first ``steps`` batches of an iterable of (positions, waves)."""
    start, count = time.time(), 0
    for i, (_, waves) in enumerate(batches):
        count += len(waves)
        if i + 1 >= steps:
            break
    return count / (time.time() - start)


def _stack_items(items):
    positions, waves = zip(*items)
    return torch.as_tensor(positions), torch.stack(waves)


def item_loader(task, num_workers, epoch):
    """The loader as it was before batch reads: one ``__getitem__`` (a memory-map slice) per window in
    ``num_workers`` DataLoader workers, stacked by the collate function; the task's plan (a reference only)."""
    return torch.utils.data.DataLoader(
        task.dataset,
        batch_sampler=task.sampler.epoch_plan(epoch),
        num_workers=num_workers,
        collate_fn=_stack_items,
    )


def _endless(batches_of_epoch):
    """The batches of epoch 1, 2, ... of ``batches_of_epoch(epoch)``: a timing spans epochs (and the loader's
    start-up in each, as in training) when an epoch has fewer batches than the timed steps."""
    epoch = 1
    while True:
        yield from batches_of_epoch(epoch)
        epoch += 1


def step_throughput(trainer, warmup, steps):
    """Samples per second of the system's own training step (``Trainer.train_step``: forward, loss,
    backward, optimiser and schedule) over ``steps`` batches, after ``warmup`` untimed ones."""
    trainer.model.train()
    batches = _endless(trainer.task.batches)
    count, start = 0, None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(trainer.device)
            start = time.time()
        batch = next(batches)
        trainer.train_step(batch, i)
        if i >= warmup:
            count += len(batch[1])
    _sync(trainer.device)
    return count / (time.time() - start)


def model_only_throughput(trainer, warmup, steps):
    """Samples per second of ``Trainer.train_step`` on one batch moved to the device once: the step rate
    without the loader (reads, pinning, host-to-device copies). Each step gets a copy of the batch made on
    the device, because a task may change its batch in place (System 1's mixup)."""
    positions, waves = next(iter(trainer.task.batches(1)))
    waves = waves.to(trainer.device)
    trainer.model.train()
    start = None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(trainer.device)
            start = time.time()
        trainer.train_step((positions, waves.clone()), i)
    _sync(trainer.device)
    return steps * len(waves) / (time.time() - start)


def step_figures(trainer, steps):
    """Full training steps (the real loader) vs model-only ones (the batch already on the device), and the
    share of a full step's time that the loader adds: 1 - full / model-only (0: the loader keeps up)."""
    full = step_throughput(trainer, 2, steps)
    model_only = model_only_throughput(trainer, 2, steps)
    return {
        "train_samples_per_s": full,
        "train_model_only_samples_per_s": model_only,
        "loader_share_of_step": 1 - full / model_only,
    }


def dgmix_figures(a, device, workdir):
    """DG-Mix pre-training: optimiser steps of batch_size clips (grad_accum micro-batches), peak memory."""
    from asd_tools.models.dgmix import PretrainModel, Projector
    from asd_tools.systems.dgmix.config import DGMixConfig
    from asd_tools.systems.dgmix.recipe import make_extractor, stage_trainer
    from asd_tools.systems.dgmix.task import VICRegMixupTask

    cfg = load_config(a.config, DGMixConfig)
    if a.batch_size:
        cfg.pretrain.batch_size = a.batch_size
    if a.grad_accum:
        cfg.pretrain.grad_accum = a.grad_accum
    torch.manual_seed(0)
    model = PretrainModel(make_extractor(cfg, section_head=False), Projector())
    task = VICRegMixupTask(cfg.pretrain, cfg.vicreg, Corpus(a.dumpdir), a.machine, device)
    trainer = stage_trainer(model, task, cfg.pretrain, workdir, device)
    accum = cfg.pretrain.grad_accum  # the first optimiser step is warm-up
    figures = {
        "batch_size": cfg.pretrain.batch_size,
        "grad_accum": accum,
        "micro_batch": task.batch_size,
        "pretrain_samples_per_s": step_throughput(trainer, accum, a.steps * accum),
    }
    return {**figures, **device_figures(device)}


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=10, help="timed training / loader steps")
    p.add_argument("--batch_size", type=int, default=None, help="override train.batch_size")
    p.add_argument("--embed_clips", type=int, default=100, help="test clips embedded for the timing")
    p.add_argument("--loader_only", action="store_true", help="System 1: only the loader figures")
    p.add_argument(
        "--model_only",
        action="store_true",
        help="System 1: only the training step rates, with the real loader and with the batch already on the device",
    )
    p.add_argument(
        "--warm_up",
        type=bool_arg,
        default=True,
        help="false: time the loader's first pass (cold-cache figures, after `echo 3 > /proc/sys/vm/drop_caches`)",
    )
    p.add_argument(
        "--reference_workers",
        type=int,
        default=4,
        help="workers of the per-item reference loader (4: config 000's loader before batch reads)",
    )
    p.add_argument(
        "--system",
        choices=sorted(SYSTEMS),
        default=None,
        help="the registered system (default: the config's system:; given, it must be the config's)",
    )
    p.add_argument("--grad_accum", type=int, default=None, help="dgmix: override pretrain.grad_accum")
    args = p.parse_args(argv)
    if args.loader_only and args.model_only:
        p.error("--loader_only and --model_only exclude each other: give one")

    def main_fn(a):
        configured = system_name(a.config)
        if a.system not in (None, configured):
            raise ValueError(f"--system {a.system}: {a.config} is a {configured} config; give --system {configured}")
        a.system = configured
        device = best_device(a.device)
        figures_of = SYSTEM_FIGURES.get(a.system, stage_figures)
        with tempfile.TemporaryDirectory() as workdir:  # the trainers' folder: nothing is kept
            _print(figures_of(a, device, workdir))

    run(main_fn, args)


def serial_oe_figures(a, device, workdir):
    """System 1: loader alone, the training step, embedding and the detector stage, peak memory."""
    cfg = load_config(a.config, SerialOEConfig)
    if a.batch_size:
        cfg.train.batch_size = a.batch_size
    if "pretrained" in cfg.model.params:  # throughput does not depend on the initial weights
        cfg.model.params["pretrained"] = False
    corpus = Corpus(a.dumpdir)
    classes = read_classes(corpus, a.machine, resolve_class_target(cfg.train.class_target, corpus, a.machine))
    trainer = build_trainer(cfg, corpus, a.machine, a.machines, workdir, device, classes)
    figures = {
        "threads": torch.get_num_threads(),
        "batch_size": cfg.train.batch_size,
        "num_workers": cfg.train.num_workers,  # 0: read by threads of this process
    }
    if a.model_only:
        return {**figures, **step_figures(trainer, a.steps), **device_figures(device)}
    figures["reference_workers"] = a.reference_workers
    # the task's loader (a batch per read) and the per-item reference, same plan, same run; an untimed pass
    # first, so that both read from the page cache (unless --warm_up false)
    if a.warm_up:
        loader_throughput(_endless(trainer.task.batches), a.steps)
    figures["loader_samples_per_s"] = loader_throughput(_endless(trainer.task.batches), a.steps)
    reference = _endless(partial(item_loader, trainer.task, a.reference_workers))
    figures["item_loader_samples_per_s"] = loader_throughput(reference, a.steps)
    figures["loader_speed_up"] = figures["loader_samples_per_s"] / figures["item_loader_samples_per_s"]
    if a.loader_only:
        return {**figures, **device_figures(device)}
    figures.update(step_figures(trainer, a.steps))
    test = corpus.clips(a.machine, "test").iloc[: a.embed_clips]
    inliers = corpus.clips(a.machine, cfg.embed.inlier_subsets)
    e = cfg.embed
    to_features = partial(model_outputs_to_features, sections=corpus.sections(a.machine), classes=classes)

    def embed(clips):
        return extract(trainer.model, clips, corpus, e.n_split, e.batch_size, device, to_features, e.num_workers)

    _sync(device)
    start = time.time()
    with torch.autocast(
        torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.train.amp and device.startswith("cuda")
    ):
        test_emb = embed(test)
    _sync(device)
    figures["embed_windows_per_s"] = len(test_emb.window_clip) / (time.time() - start)
    inlier_emb = embed(inliers)
    start = time.time()
    scores = run_detectors(inlier_emb, test_emb, corpus.manifest(a.machine), cfg.detect)
    figures["detect_seconds"] = time.time() - start
    figures["detect_postprocesses"] = scores.shape[1] - 2
    figures["detect_test_clips"] = len(test)
    return {**figures, **device_figures(device)}


def stage_figures(a, device, workdir):
    """A system without figures of its own: its training stage, then its embedding of every checkpoint, timed
    through the System interface (seconds; windows embedded per second), peak memory."""
    system = SYSTEMS[a.system]()
    expdir = Path(workdir) / a.machine
    _sync(device)
    start = time.time()
    system.train(a.config, a.dumpdir, a.machine, a.machines, expdir, device)
    _sync(device)
    figures = {"train_stage_seconds": time.time() - start}
    checkpoints = system.checkpoints(expdir)
    start = time.time()
    for checkpoint in checkpoints:
        system.embed(expdir, a.dumpdir, a.machine, checkpoint, device)
    _sync(device)
    seconds = time.time() - start
    windows = sum(len(Embeddings.load(path).window_clip) for path in expdir.glob("*/*.npz"))
    figures.update(
        embed_stage_seconds=seconds, embed_checkpoints=len(checkpoints), embed_windows_per_s=windows / seconds
    )
    return {**figures, **device_figures(device)}


# the systems with figures of their own; every other registered system gets stage_figures
SYSTEM_FIGURES = {"serial_oe": serial_oe_figures, "dgmix": dgmix_figures}


def _print(figures):
    for k, v in figures.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
