"""The Monte Carlo behind the score-weighted vote: seeded random orders, and who wins each prefix.

``m1eval.analysis.metrics.weighted_majority_curve`` estimates a score-weighted vote at every
k from random orders of a problem's samples: in each order the first k samples vote, each
class adds up its members' scores, the largest total wins and tied classes split the
vote. ``vote_shares`` does that for a batch of problems at once (the same numbers of
samples and classes) and returns, per problem and k, the mean over the orders of the
share of the vote that right classes win.

Only the running totals need every k (each is a sum in voting order, exactly what a voter
adding the scores up gets, so ties are exact ties); who wins is decided at the k asked
for alone, which is most of the saving when a report asks for k = 1, 2, 4, ... only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_orders(n: int, draws: int, seeds: Sequence[int]) -> np.ndarray:
    """(len(seeds), draws, n): ``draws`` uniformly random orders of n samples per seed, each from
    its own ``default_rng(seed)`` (an argsort of uniforms), so a problem's orders do not depend
    on which problems it is voted with."""
    if draws < 1:
        raise ValueError(f"a Monte Carlo vote needs draws >= 1, got {draws}")
    return np.argsort(np.stack([np.random.default_rng(s).random((draws, n)) for s in seeds]), axis=-1)


def vote_shares(
    classes: np.ndarray, scores: np.ndarray, class_weight: np.ndarray, orders: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """Mean over the orders of the right share of the vote of the first k samples, for k - 1 in ``at``.

    ``classes`` (problems, n) holds each sample's class index (-1: abstains), ``scores``
    (problems, n) its score (>= 0; 0 where it abstains), ``class_weight`` (problems, C) each
    class's share of correct samples (every class has a voter), ``orders`` (problems, draws, n).
    Returns (problems, len(at)). Memory is problems x draws x n x C (the caller bounds the batch).

    The right share of a tie is the sum of the tied classes' weights (a matrix product over
    the classes) over their number. Its rounding may depend on how many rows the product
    has when three or more classes with weights other than 0 and 1 tie, so a caller that
    must give the same bits for every ``at`` asks for every k there.
    """
    n_classes = class_weight.shape[1]
    ordered = np.take_along_axis(classes[:, None, :], orders, axis=2)  # (problems, draws, k)
    ordered_scores = np.take_along_axis(scores[:, None, :], orders, axis=2)
    ballots = ordered[..., None] == np.arange(n_classes)  # (problems, draws, k, classes)
    running = np.cumsum(np.where(ballots, ordered_scores[..., None], 0.0), axis=2)[:, :, at]
    present = ballots.argmax(axis=2)[:, :, None, :] <= at[:, None]  # the class's first vote came by k
    totals = np.where(present, running, -np.inf)
    winners = present & (totals == totals.max(axis=3, keepdims=True))
    right = (winners @ class_weight[:, None, :, None])[..., 0]
    return _mean_over_draws(right / np.maximum(winners.sum(axis=3), 1))


def _mean_over_draws(shares: np.ndarray) -> np.ndarray:
    """(problems, draws, K) -> (problems, K): the mean over draws, added up in draw order.

    The order is fixed so the bits do not depend on K: numpy adds along a strided axis in
    order, but pairwise along a contiguous one, which is what a single column becomes.
    """
    return np.cumsum(shares, axis=1)[:, -1] / shares.shape[1]
