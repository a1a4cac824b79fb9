"""The names of the files that one stage writes and another reads: one place, so that no module spells them.

An experiment folder ``<expdir>/<machine>/<tag>/`` holds::

  config.yaml                 the resolved config (written by the training stage, read by every later one)
  classes.csv                 the attribute classes of a section head (when it learns classes)
  checkpoint-best.pt          weights with the lowest validation loss
  checkpoint-<N>epochs.pt     weights after epoch N (the configured save epochs)
  checkpoint-last.pt          the latest full state (model, optimiser, schedule, history): resume
  train.done                  training finished
  train_history.csv           per-epoch losses and validation metrics (the training curves)
  finetune/                   a second training phase (DG-Mix), with the same files
  <checkpoint>/inlier.npz     embeddings of the inlier clips with that checkpoint (the embed stage)
  <checkpoint>/test.npz       embeddings of the test clips
  <checkpoint>/scores.csv     every post-process's clip scores (the detect stage)

and every stage's folder its ``provenance_<stage>.json`` (``asd_tools.provenance``). A dump folder
``<dumpdir>/<machine>/`` holds ``manifest.csv``, ``stats.json`` and the arrays; a result folder
``score.csv`` and ``score.md``.
"""

CONFIG = "config.yaml"
CLASSES = "classes.csv"

LAST = "checkpoint-last.pt"
BEST = "checkpoint-best.pt"
DONE = "train.done"
HISTORY = "train_history.csv"
FINETUNE = "finetune"  # the folder of a second training phase (DG-Mix fine-tuning), with its own checkpoints

INLIER_EMBEDDINGS = "inlier.npz"
TEST_EMBEDDINGS = "test.npz"
CLIP_SCORES = "scores.csv"

MANIFEST = "manifest.csv"
DUMP_STATS = "stats.json"

BOARD = "score.csv"
BOARD_REPORT = "score.md"


def interval_checkpoint(epoch: int) -> str:
    """The file of the weights kept after ``epoch``."""
    return f"checkpoint-{epoch}epochs.pt"


def checkpoint_name(file_name: str) -> str:
    """A checkpoint's name as the embed stage and the score tables use it: its file name without ``.pt``."""
    return file_name[: -len(".pt")] if file_name.endswith(".pt") else file_name


def record_name(stage: str) -> str:
    """The provenance record of ``stage`` in its output folder."""
    return f"provenance_{stage}.json"
