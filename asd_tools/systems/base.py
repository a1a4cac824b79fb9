"""The system core: the run steps every system shares, and the few parts that are a system's own.

A system (one module, registered in ``systems/registry.py``) implements only what is its own:

- ``training_phases(cfg, corpus, machine, machines, expdir, device)``: its training runs, in order, each a
  :class:`TrainingPhase` (its folder, what it is made from, how to build its trainer); a generator,
  so that a phase can be made from the outputs of the one before. None for a system without a model;
- ``checkpoint_names(cfg)``: the models that the embed stage embeds (``model_file`` / ``model_files``: the
  weights each is made from, digested into its embeddings' record);
- ``load_model(cfg, corpus, machine, expdir, checkpoint, device)`` (what ``embed_clips`` needs of a
  checkpoint: its model, on ``device``) and ``embed_clips(cfg, model, corpus, machine, clips, part,
  device) -> Embeddings`` (``part``: "inlier" or "test").

The runner (``train``, ``checkpoints``, ``embed``: the same for every system; ``bin/train``, ``bin/embed``
and ``asd.sh`` call them) owns the rest: claiming each training folder against its provenance record,
the process barriers under torchrun, saving the resolved config and the head's classes, and the
embedding records that make the embed stage skip current outputs and redo stale ones.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import pandas as pd

from asd_tools.artefacts import CONFIG, INLIER_EMBEDDINGS, TEST_EMBEDDINGS
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import config_to_dict, load_config, save_config
from asd_tools.data.corpus import Corpus
from asd_tools.provenance import Provenance, file_digest
from asd_tools.training import distributed
from asd_tools.training.classes import save_classes
from asd_tools.training.experiment import claim_training_dir
from asd_tools.training.trainer import Trainer

EMBEDDING_FILES = {"inlier": INLIER_EMBEDDINGS, "test": TEST_EMBEDDINGS}


@dataclass
class TrainingPhase:
    """One resumable training run in one folder (System 1 has one; DG-Mix pre-training and fine-tuning)."""

    folder: Path
    stage: str  # its record: provenance_<stage>.json
    inputs: dict  # what the model is made from: dump and list identities, a pre-trained state, ...
    settings: dict  # the config sections that make the model
    build: Callable[[], Trainer]  # the seeded trainer, built after the folder is claimed
    classes: Optional[pd.DataFrame] = None  # the head's attribute classes, saved into ``folder`` (to embed)
    # With an unchanged record: True when the phase's outputs are complete (it is then not even built)
    finished: Optional[Callable[[], bool]] = None
    publish: Optional[Callable[[], None]] = None  # after training, in the main process (e.g. copy weights)

    def record(self) -> Provenance:
        return Provenance(self.folder, self.stage, self.inputs, self.settings)


class System:
    """One ASD system. Subclasses set ``name`` and ``config_class`` and implement its own parts."""

    name: str = ""
    config_class: type = type(None)
    description: str = ""
    # Config keys ("section.key") holding the training seed: ``asd.sh --seeds`` sets them all to each seed
    # in turn. Empty for a system that trains nothing at random (its runs are identical for every seed).
    seed_keys: Tuple[str, ...] = ()
    # Its smallest shipped config (conf/tuning/): the GPU check (tools/gpu_check.sh) runs it end to end.
    tiny_config: str = ""

    # ------------------------------------------------------------------ a system's own parts
    def training_phases(
        self, cfg, corpus: Corpus, machine: str, machines, expdir: Path, device
    ) -> Iterator[TrainingPhase]:
        """The training runs of one machine type (``machines``: every machine type of the run, for a
        system that takes negatives from the others). None: nothing to train."""
        return iter(())

    def checkpoint_names(self, cfg) -> List[str]:
        """Names of the models that the embed stage embeds (``<expdir>/<name>.pt``)."""
        raise NotImplementedError

    def inlier_subsets(self, cfg) -> List[str]:
        """The lists whose clips are the detectors' inliers."""
        return list(cfg.embed.inlier_subsets)

    def embedding_lists(self, cfg) -> List[str]:
        """Every list the embed stage reads (its record's inputs)."""
        return sorted({*self.inlier_subsets(cfg), "test"})

    def embedding_settings(self, cfg) -> dict:
        """The config sections that the embeddings are made with (its record's settings): by default every
        section but the detectors' (the detect stage keeps its own record)."""
        return {name: value for name, value in config_to_dict(cfg).items() if name not in ("system", "detect")}

    def model_file(self, expdir: Path, checkpoint: str) -> Optional[Path]:
        """The weights that ``checkpoint`` names (None: a system without a model)."""
        return expdir / f"{checkpoint}.pt"

    def model_files(self, cfg, corpus: Corpus, machine: str, expdir: Path, checkpoint: str) -> dict:
        """Every file of weights that ``checkpoint``'s embeddings are made from, by the name its record
        gives it: ``model_file`` as "checkpoint" (none for a system without a model). A system with
        several models per checkpoint (one per section) names them all."""
        model_file = self.model_file(expdir, checkpoint)
        return {} if model_file is None else {"checkpoint": model_file}

    def load_model(self, cfg, corpus: Corpus, machine: str, expdir: Path, checkpoint: str, device):
        """What ``embed_clips`` needs of ``checkpoint``: its model on ``device``, ready to embed (and
        whatever else the system's features are made with)."""
        raise NotImplementedError

    def embed_clips(self, cfg, model, corpus: Corpus, machine: str, clips, part: str, device) -> Embeddings:
        """Embeddings of ``clips`` (manifest rows): the inliers (``part`` "inlier") or the test clips."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the runner
    def load_config(self, path):
        return load_config(path, self.config_class)

    def saved_config(self, expdir):
        """The resolved config that the training stage saved in ``expdir``."""
        return self.load_config(Path(expdir) / CONFIG)

    def train(self, config_path, dumpdir, machine, machines, expdir, device, force=False) -> None:
        """Train (or resume, or skip when finished) every phase of ``expdir`` for ``machine``; the resolved
        config goes to ``expdir/config.yaml``, which the later stages read."""
        cfg, expdir = self.load_config(config_path), Path(expdir)
        config_saved = False
        for phase in self.training_phases(cfg, Corpus(dumpdir), machine, machines, expdir, device):
            run_phase(phase, force, save=None if config_saved else (cfg, expdir / CONFIG))
            config_saved = True
        if not config_saved:  # nothing to train: the config alone, every section free to change
            if distributed.is_main():
                save_config(cfg, expdir / CONFIG)
            logging.info(f"{machine}: nothing to train; config saved to {expdir / CONFIG}")

    def checkpoints(self, expdir) -> List[str]:
        """Names of the models in ``expdir`` that the embed stage embeds."""
        return self.checkpoint_names(self.saved_config(expdir))

    def embedding_record(self, cfg, corpus: Corpus, machine: str, expdir: Path, checkpoint: str) -> Provenance:
        """What one checkpoint's embeddings are made from: its weights, the dump, the lists and the settings."""
        inputs = {}
        for name, model_file in self.model_files(cfg, corpus, machine, expdir, checkpoint).items():
            if not model_file.exists():
                raise FileNotFoundError(f"{model_file} is missing: run the training stage first")
            inputs[name] = file_digest(model_file)
        inputs[f"dump/{machine}"] = corpus.identity(machine)
        inputs.update(corpus.lists_identity(machine, self.embedding_lists(cfg)))
        return Provenance(expdir / checkpoint, "embed", inputs, self.embedding_settings(cfg))

    def embed(self, expdir, dumpdir, machine, checkpoint, device, force=False) -> None:
        """Embeddings of the inlier and test clips with one checkpoint -> ``expdir/<checkpoint>/{inlier,test}.npz``;
        skipped when their record is current (``force`` recomputes)."""
        expdir = Path(expdir)
        cfg, corpus = self.saved_config(expdir), Corpus(dumpdir)
        record = self.embedding_record(cfg, corpus, machine, expdir, checkpoint)
        if record.is_current(force):
            return
        record.invalidate()
        model = self.load_model(cfg, corpus, machine, expdir, checkpoint, device)
        counts = []
        for part, subsets in (("inlier", self.inlier_subsets(cfg)), ("test", "test")):
            clips = corpus.clips(machine, subsets)
            emb = self.embed_clips(cfg, model, corpus, machine, clips, part, device)
            emb.save(expdir / checkpoint / EMBEDDING_FILES[part])
            counts.append(f"{len(clips)} {part}")
        record.write()
        logging.info(f"{machine}/{checkpoint}: embedded {' and '.join(counts)} clips")


def run_phase(phase: TrainingPhase, force: bool, save=None) -> None:
    """Claim the phase's folder (or skip a finished phase), build its trainer, save what the later
    stages need (``save``: (config, path) of the resolved config; the head's classes), train.

    A folder that holds a model trained from other inputs or settings stops the run (see
    ``claim_training_dir``; ``force`` retrains after moving it aside). Under torchrun one process
    claims the folder and writes into it; every process trains.
    """
    record = phase.record()
    if phase.finished is not None and not force and record.changes() == [] and phase.finished():
        logging.info(f"{phase.folder}: {phase.stage} is up to date; skipping it")
        return
    if distributed.is_main():
        claim_training_dir(record, force)
    distributed.barrier()
    trainer = phase.build()
    if distributed.is_main():
        save_classes(phase.classes, phase.folder)
        if save is not None:  # after every object is built from it
            save_config(*save)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    logging.info(
        f"{phase.folder}: {phase.stage}: {n_params / 1e6:.2f} M parameters; "
        f"{trainer.task.steps_per_epoch()} steps per epoch"
    )
    trainer.run()
    if phase.publish is not None and distributed.is_main():
        phase.publish()


def check_system_field(config, name: str) -> None:
    """A config read with the schema of system ``name`` must name that system (``system:``)."""
    if config.system != name:
        raise ValueError(
            f"system: '{config.system}', but the config is read as one of '{name}'; run it through bin/train "
            "(which picks the system the config names), or correct its 'system:' line"
        )
