"""Window lengths of the scorer and the warm-up they imply, in points.

Plain arithmetic without numpy, so settings can tell at load time whether a series'
history window can ever produce a score, and the job how long a backfill must be.
"""

from __future__ import annotations

import math

SHORT = 3  # points in the "now" window of the features
BASE = 24  # points in the baseline before it
LOOKBACK = SHORT + BASE  # earlier points the first feature row needs (no seasonal column)
TAIL_EVERY = 24  # points between refits of the tail (threshold) model
TRAIN_POINTS = 2000  # most recent feature rows a model is fitted on
MAX_POINTS = 11000  # Prometheus refuses longer query_range answers


def first_score_index(min_train: int, min_scores: int, refit_every: int,
                      tail_every: int = TAIL_EVERY) -> int:
    """Index of the first point that gets a score, when refits run inline.

    Fits are tried at points 0, refit_every, 2 refit_every, … and the first succeeds
    once LOOKBACK + min_train points precede it; from there every point has a raw
    score, and the tail model, refitted every tail_every points, needs min_scores of
    them before its first probability.
    """
    first_fit = math.ceil((LOOKBACK + min_train) / refit_every) * refit_every
    return first_fit + math.ceil(min_scores / tail_every) * tail_every
