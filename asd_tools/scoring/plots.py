"""Figures of one scored experiment, for its chosen post-process (headless and deterministic).

Per machine type, in ``<results>/plots/``:
  roc_<machine>.png        ROC per section: source normals and target normals, each against all
                           the section's anomalies (the official AUCs), the pAUC's FPR <= 0.1 band shaded
  hist_<machine>.png       anomaly-score histograms per section: normal source / normal target / anomaly
  embedding_<machine>.png  t-SNE map of the clip embeddings (test clips by section and domain, anomalies
                           ringed; inlier clips faint), when the experiment kept embeddings
  training_<machine>.png   training curves (losses per epoch, validation metrics), when it was trained

Matplotlib's object API with the Agg canvas is used (no pyplot state, no display needed); every
figure has a fixed size, so a PNG's pixel size is known in advance.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from asd_tools.artefacts import FINETUNE, HISTORY, INLIER_EMBEDDINGS, TEST_EMBEDDINGS
from asd_tools.backend.embeddings import Embeddings
from asd_tools.constants import PAUC_MAX_FPR
from asd_tools.utils import atomic_path

DPI = 80
SECTION_PANEL = (3.2, 2.8)  # inches per section panel
MAP_SIZE = (6.4, 5.0)
CURVES_SIZE = (9.6, 3.2)
MAX_MAP_INLIERS = 600  # t-SNE stays a few seconds per machine type on the full data set
DOMAIN_MARKERS = {"source": "o", "target": "^", "unknown": "s"}


def figure_pixels(size) -> tuple:
    """(width, height) in pixels of a figure of ``size`` inches."""
    return int(round(size[0] * DPI)), int(round(size[1] * DPI))


def section_grid_size(n_sections) -> tuple:
    columns = min(n_sections, 3)
    rows = int(np.ceil(n_sections / columns))
    return SECTION_PANEL[0] * columns, SECTION_PANEL[1] * rows


def _figure(size):
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        # no metadata: the same run gives the same bytes; the size stays exactly figsize * DPI
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})


def _section_axes(fig, sections):
    columns = min(len(sections), 3)
    rows = int(np.ceil(len(sections) / columns))
    return [fig.add_subplot(rows, columns, i + 1) for i in range(len(sections))]


def plot_roc(test: pd.DataFrame, score: str, machine: str, path) -> None:
    """ROC curves of one machine type's sections (``test``: its test clips with labels and ``score``)."""
    from sklearn.metrics import roc_curve  # here: scoring without figures never loads sklearn

    sections = sorted(test["section"].unique())
    fig = _figure(section_grid_size(len(sections)))
    for ax, section in zip(_section_axes(fig, sections), sections):
        part = test[test["section"] == section]
        ax.set_title(f"{machine} {section:02d} ({part['dataset'].iloc[0]})", fontsize=9)
        ax.axvspan(0, PAUC_MAX_FPR, color="0.9", label=f"pAUC band (FPR ≤ {PAUC_MAX_FPR})")
        ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
        anomaly = part["state"] == "anomaly"
        for domain, color in (("source", "tab:blue"), ("target", "tab:orange")):
            keep = anomaly | ((part["domain"] == domain) & (part["state"] == "normal"))
            y = anomaly[keep].to_numpy()
            if y.all() or not y.any():
                continue
            fpr, tpr, _ = roc_curve(y, part.loc[keep, score])
            area = np.trapezoid(tpr, fpr)
            ax.plot(fpr, tpr, color=color, linewidth=1.2, label=f"{domain} normals: AUC {100 * area:.1f}")
        if not part["state"].isin(("normal", "anomaly")).any():
            ax.text(0.5, 0.5, "no labels", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("false-positive rate", fontsize=8)
        ax.set_ylabel("true-positive rate", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    _save(fig, path)


def plot_histograms(test: pd.DataFrame, score: str, machine: str, path) -> None:
    """Score histograms per section: normal source, normal target, anomaly (or unlabelled)."""
    sections = sorted(test["section"].unique())
    fig = _figure(section_grid_size(len(sections)))
    groups = (
        ("normal source", "tab:blue", lambda p: (p["state"] == "normal") & (p["domain"] == "source")),
        ("normal target", "tab:orange", lambda p: (p["state"] == "normal") & (p["domain"] == "target")),
        ("anomaly", "tab:red", lambda p: p["state"] == "anomaly"),
        ("unlabelled", "0.5", lambda p: p["state"] == "unknown"),
    )
    for ax, section in zip(_section_axes(fig, sections), sections):
        part = test[test["section"] == section]
        bins = np.histogram_bin_edges(part[score], bins=20)
        for label, color, rows in groups:
            values = part.loc[rows(part), score]
            if len(values):
                ax.hist(values, bins=bins, alpha=0.55, color=color, label=f"{label} ({len(values)})")
        ax.set_title(f"{machine} {section:02d} ({part['dataset'].iloc[0]})", fontsize=9)
        ax.set_xlabel("anomaly score", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    _save(fig, path)


def clip_vectors(emb: Embeddings) -> np.ndarray:
    """One vector per clip: the mean of its windows' embedding (or of all features stacked)."""
    names = ["embedding"] if "embedding" in emb.features else sorted(emb.features)
    windows = emb.stack(names)
    return pd.DataFrame(windows).groupby(emb.window_clip).mean().to_numpy()


def plot_embedding_map(inlier: Embeddings, test: Embeddings, manifest: pd.DataFrame, machine: str, path, seed=0):
    """t-SNE of inlier and test clip embeddings; test clips by section (colour) and domain (marker)."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(inlier.clip_id))[:MAX_MAP_INLIERS])
    vectors = np.concatenate([clip_vectors(inlier)[keep], clip_vectors(test)])
    ids = np.concatenate([inlier.clip_id[keep], test.clip_id])
    info = manifest.loc[ids]
    perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
    from sklearn.manifold import TSNE  # here: scoring without figures never loads sklearn

    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        (vectors - vectors.mean(0)) / (vectors.std(0) + 1e-8)
    )
    is_test = np.arange(len(ids)) >= len(keep)
    sections = sorted(info["section"].unique())
    colors = {s: f"C{i % 10}" for i, s in enumerate(sections)}
    fig = _figure(MAP_SIZE)
    ax = fig.add_subplot(1, 1, 1)
    section = info["section"].to_numpy()
    for s in sections:
        rows = ~is_test & (section == s)
        ax.scatter(*points[rows].T, s=6, color=colors[s], alpha=0.25, linewidths=0)
    domain, state = info["domain"].to_numpy(), info["state"].to_numpy()
    for s in sections:
        for d, marker in DOMAIN_MARKERS.items():
            rows = is_test & (section == s) & (domain == d)
            if rows.any():
                ax.scatter(*points[rows].T, s=18, color=colors[s], marker=marker, label=f"{s:02d} {d}")
    anomalous = is_test & (state == "anomaly")
    ax.scatter(*points[anomalous].T, s=60, facecolors="none", edgecolors="black", linewidths=0.8, label="anomaly")
    ax.set_title(f"{machine}: clip embeddings (t-SNE; faint: inlier clips)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=6, ncol=2, loc="best", markerscale=0.8)
    _save(fig, path)


def plot_training_curves(histories: dict, machine: str, path) -> None:
    """Losses per epoch (train, and valid where validated) and the other validation metrics.

    ``histories``: stage name -> DataFrame of ``train_history.csv`` (DG-Mix has pre-training and fine-tuning).
    """
    fig = _figure(CURVES_SIZE)
    losses, metrics = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for stage, history in histories.items():
        prefix = f"{stage}: " if len(histories) > 1 else ""
        for column in [c for c in history if c.endswith("loss")]:
            values = history[["epoch", column]].dropna()
            losses.plot(values["epoch"], values[column], marker=".", linewidth=1, label=prefix + column)
        for column in [c for c in history if c.startswith("valid_") and not c.endswith("loss")]:
            values = history[["epoch", column]].dropna()
            metrics.plot(values["epoch"], values[column], marker=".", linewidth=1, label=prefix + column)
    for ax, title in ((losses, "losses"), (metrics, "validation metrics")):
        ax.set_title(f"{machine}: {title}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.lines:
            ax.legend(fontsize=6)
    _save(fig, path)


def experiment_figures(test: pd.DataFrame, score: str, sources: dict, manifest: pd.DataFrame, folder) -> dict:
    """Every figure of a scored experiment -> {machine: [(title, path relative to ``folder``)]}.

    ``test``: labelled test clips with the chosen post-process in column ``score``; ``sources``:
    machine -> its scores.csv (embeddings lie beside it, training histories above it).
    """
    folder = Path(folder)
    figures = {}
    for machine, part in test.groupby("machine", sort=False):
        made = []
        for title, name, plot in (
            ("ROC curves per section", f"roc_{machine}.png", plot_roc),
            ("Anomaly-score histograms per section", f"hist_{machine}.png", plot_histograms),
        ):
            plot(part, score, machine, folder / "plots" / name)
            made.append((title, f"plots/{name}"))
        scores_dir = Path(sources[machine]).parent
        if (scores_dir / INLIER_EMBEDDINGS).exists() and (scores_dir / TEST_EMBEDDINGS).exists():
            name = f"embedding_{machine}.png"
            inlier, test_emb = (
                Embeddings.load(scores_dir / INLIER_EMBEDDINGS),
                Embeddings.load(scores_dir / TEST_EMBEDDINGS),
            )
            plot_embedding_map(inlier, test_emb, manifest, machine, folder / "plots" / name)
            made.append(("Embedding map (t-SNE)", f"plots/{name}"))
        runs = (("training", scores_dir.parent / HISTORY), ("fine-tuning", scores_dir.parent / FINETUNE / HISTORY))
        histories = {stage: pd.read_csv(path) for stage, path in runs if path.exists()}
        if histories:
            name = f"training_{machine}.png"
            plot_training_curves(histories, machine, folder / "plots" / name)
            made.append(("Training curves", f"plots/{name}"))
        figures[machine] = made
    return figures
