"""Which post-process a score table reports: the best on the development sections among the eligible ones.

A post-process is one column of the detector stage's ``scores.csv`` (detector x inliers x features x
pooling). Choosing the best of a few hundred on the same sections is optimistic, and one kind of
column must never win: a (nearly) constant one.
"""

import logging

import numpy as np
import pandas as pd

PARTIAL = "_partial"  # suffix of a set (dev/eval) whose sections are not all labelled
CHANCE = 0.5  # the official score (and every AUC / standardised pAUC in it) of a scorer that ranks at random
# A post-process whose test scores on a section take fewer distinct values than this share of the
# section's clips (and never fewer than two) ranks clips by ties, not by evidence. A constant scorer
# scores exactly chance on every figure, and chance beats every real scorer below 50 in the harmonic
# mean, so such a post-process is listed but never chosen.
MIN_DISTINCT_SHARE = 0.1
DEGENERATE = "degenerate"  # score.csv column: the sections on which a post-process is (nearly) constant


def rank_column(board: pd.DataFrame):
    """The leaderboard column that ranks post-processes: the development official score (of its labelled
    part when the set is only partly labelled); None without labelled development clips."""
    return next((c for c in ("dev_official", f"dev{PARTIAL}_official") if c in board), None)


def section_rows(test: pd.DataFrame) -> list:
    """(section name "dev/fan/00", row positions) of every section of ``test``, labelled or not."""
    groups = test.groupby(["dataset", "machine", "section"], sort=True).indices
    return [(f"{dataset}/{machine}/{int(section):02d}", rows) for (dataset, machine, section), rows in groups.items()]


def degenerate_sections(test: pd.DataFrame, column: str, sections=None) -> list:
    """The sections ("dev/fan/00") on whose test clips ``column`` takes too few distinct values.

    Every test clip counts, labelled or not: how many values a scorer gives is no label.
    ``sections`` (from :func:`section_rows`) saves regrouping when many columns are checked.
    """
    values = test[column].to_numpy()
    found = []
    for name, rows in section_rows(test) if sections is None else sections:
        needed = max(2, int(np.ceil(MIN_DISTINCT_SHARE * len(rows))))
        if len(np.unique(values[rows])) < needed:
            found.append(name)
    return found


def eligible(board: pd.DataFrame, machine=None) -> pd.Series:
    """Rows of a leaderboard that may be chosen: not (nearly) constant on any section (of ``machine``)."""
    sections = board[DEGENERATE].fillna("").astype(str).str.split(";")
    if machine is None:
        return sections.map(lambda parts: not any(parts))
    return sections.map(lambda parts: not any(p.split("/")[1:2] == [machine] for p in parts if p))


def choose_postprocess(board: pd.DataFrame, requested=None) -> str:
    """The best eligible post-process on dev (``leaderboard`` order), or the ``requested`` one."""
    if requested is not None:
        if requested not in board["postprocess"].values:
            raise KeyError(f"post-process '{requested}' is not among the scored columns")
        if not eligible(board)[board["postprocess"] == requested].all():
            logging.warning(f"post-process '{requested}' (as requested) gives (nearly) constant scores on some section")
        return requested
    ok = eligible(board)
    if not ok.any():
        example = board[DEGENERATE].iloc[0].split(";")[0]
        raise ValueError(
            f"every one of the {len(board)} post-processes gives (nearly) constant scores on some section "
            f"(e.g. {board['postprocess'].iloc[0]} on {example}): the embeddings carry no ranking; check the "
            "model's training log, or name a post-process with --postprocess to score it anyway"
        )
    return board.loc[ok, "postprocess"].iloc[0]


def choice_lines(board: pd.DataFrame, best: str) -> list:
    """How the post-process was chosen: how many competed, which were set aside, and where the choice
    stands among the others (the best of many on the same sections is an optimistic figure)."""
    ok = eligible(board)
    rank_by = rank_column(board)
    lines = [
        f"{len(board)} post-processes were compared on the development sections; {int((~ok).sum())} of them "
        f"were set aside because their test scores are (nearly) constant on a section (fewer distinct values "
        f"than {100 * MIN_DISTINCT_SHARE:.0f} % of its clips: such a scorer sits at chance, 50, on every figure)."
    ]
    values = 100 * board.loc[ok, rank_by].dropna()
    if len(values):
        chosen = 100 * board.loc[board["postprocess"] == best, rank_by].iloc[0]
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        lines.append(
            f"Development official score of the {len(values)} eligible ones: chosen {chosen:.2f}, median "
            f"{median:.2f}, quartiles {q1:.2f} - {q3:.2f}, range {values.min():.2f} - {values.max():.2f}. "
            "The chosen figure is the best of many on the same sections, so it is optimistic; the median is "
            "what a post-process fixed in advance would typically give."
        )
    set_aside = board.loc[~ok, ["postprocess", DEGENERATE]]
    if len(set_aside):
        items = [f"- `{r.postprocess}`: {r.degenerate.replace(';', ', ')}" for r in set_aside.itertuples()]
        lines.append("\n".join(["Set aside (post-process: sections):", "", *items]))
    return lines
