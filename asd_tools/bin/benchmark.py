"""Benchmark System 1 on a dumped data set and print figures (no test asserts on them).

Measures, for one machine type and a config:
  data loader alone (samples/s), training steps (samples/s, with AMP on CUDA),
  embedding extraction (windows/s), and the detector stage (seconds), plus peak memory.

  python -m asd_tools.bin.benchmark --config conf/tuning/asd_model.000.yaml \
      --dumpdir dump/synthetic_small --machine fan --machines "bearing fan ..." [--device cuda]
"""

import resource
import time

import torch

from asd_tools.backend.detect import run_detectors
from asd_tools.bin.common import best_device, machines_arg, parser, run
from asd_tools.config import load_config
from asd_tools.data.corpus import Corpus
from asd_tools.systems.extract import extract
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.recipe import make_model, model_outputs_to_features
from asd_tools.systems.serial_oe.task import OutlierExposureTask
from asd_tools.training.optim import build_optimizer


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


def loader_throughput(task, steps):
    start, count = time.time(), 0
    for i, (_, waves) in enumerate(task.batches(1)):
        count += len(waves)
        if i + 1 >= steps:
            break
    return count / (time.time() - start)


def train_throughput(model, task, cfg, device, steps, warmup=2):
    optimizer = build_optimizer(cfg.train.optimizer, model, **cfg.train.optimizer_params)
    use_amp = cfg.train.amp and torch.device(device).type == "cuda"
    dtype = getattr(torch, cfg.train.amp_dtype)
    model.train()
    batches = iter(task.batches(1))
    count, start = 0, None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = time.time()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(task.batches(2))
            batch = next(batches)
        with torch.autocast(torch.device(device).type, dtype=dtype, enabled=use_amp):
            loss, _ = task.loss(model, batch, i, warmup + steps)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            count += len(batch[1])
    _sync(device)
    return count / (time.time() - start)


def dgmix_figures(a, device):
    """DG-Mix pre-training: optimiser steps of batch_size clips (grad_accum micro-batches), peak memory."""
    from asd_tools.models.dgmix import Projector
    from asd_tools.systems.dgmix.config import DGMixConfig
    from asd_tools.systems.dgmix.recipe import make_extractor
    from asd_tools.systems.dgmix.task import PretrainModel, VICRegMixupTask

    cfg = load_config(a.config, DGMixConfig)
    if a.batch_size:
        cfg.pretrain.batch_size = a.batch_size
    if a.grad_accum:
        cfg.pretrain.grad_accum = a.grad_accum
    torch.manual_seed(0)
    model = PretrainModel(make_extractor(cfg, section_head=False), Projector()).to(device)
    task = VICRegMixupTask(cfg.pretrain, cfg.vicreg, a.dumpdir, a.machine, device)
    optimizer = build_optimizer(
        cfg.pretrain.optimizer, model, cfg.pretrain.exclude_bias_and_norm, **cfg.pretrain.optimizer_params
    )
    use_amp = cfg.pretrain.amp and device.startswith("cuda")
    batches, count, start = iter(task.batches(1)), 0, None
    for step in range(a.steps + 1):  # the first optimiser step is warm-up
        if step == 1:
            _sync(device)
            start = time.time()
        for _ in range(cfg.pretrain.grad_accum):
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(task.batches(2))
                batch = next(batches)
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=use_amp):
                loss, _ = task.loss(model, batch, step, a.steps)
            (loss / cfg.pretrain.grad_accum).backward()
            count += len(batch[1]) if step else 0
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    figures = {
        "batch_size": cfg.pretrain.batch_size,
        "grad_accum": cfg.pretrain.grad_accum,
        "micro_batch": task.batch_size,
        "pretrain_samples_per_s": count / (time.time() - start),
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
    p.add_argument("--system", choices=["serial_oe", "dgmix"], default="serial_oe")
    p.add_argument("--grad_accum", type=int, default=None, help="dgmix: override pretrain.grad_accum")
    args = p.parse_args(argv)

    def main_fn(a):
        device = best_device(a.device)
        if a.system == "dgmix":
            _print(dgmix_figures(a, device))
            return
        cfg = load_config(a.config, SerialOEConfig)
        if a.batch_size:
            cfg.train.batch_size = a.batch_size
        if "pretrained" in cfg.model.params:  # throughput does not depend on the initial weights
            cfg.model.params["pretrained"] = False
        torch.manual_seed(0)
        model = make_model(cfg).to(device)
        task = OutlierExposureTask(cfg.train, a.dumpdir, a.machine, a.machines, device)
        figures = {"threads": torch.get_num_threads(), "batch_size": cfg.train.batch_size}
        figures["loader_samples_per_s"] = loader_throughput(task, a.steps)
        figures["train_samples_per_s"] = train_throughput(model, task, cfg, device, a.steps)
        corpus = Corpus(a.dumpdir)
        test = corpus.clips(a.machine, "test").iloc[: a.embed_clips]
        inliers = corpus.clips(a.machine, cfg.embed.inlier_subsets)
        e = cfg.embed

        def embed(clips):
            return extract(
                model, clips, a.dumpdir, e.n_split, e.batch_size, device, model_outputs_to_features, e.num_workers
            )

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
        _print({**figures, **device_figures(device)})

    run(main_fn, args)


def _print(figures):
    for k, v in figures.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
