"""Evaluation of predicted speaker labels."""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from unspeech.errors import DataError

__all__ = ["compute_sequence_match_accuracy", "get_list_inverse_index"]


def get_list_inverse_index(unique_ids: Sequence[Hashable]) -> dict:
    """Map each element to its position: ``['a', 3, 'abc']`` -> ``{'a': 0, 3: 1, 'abc': 2}``.

    Raises DataError (a ValueError) when an element appears twice, since its position would
    be ambiguous.
    """
    index = {}
    for position, value in enumerate(unique_ids):
        if value in index:
            raise DataError(f"get_list_inverse_index needs unique elements; {value!r} appears at "
                            f"positions {index[value]} and {position}")
        index[value] = position
    return index


def compute_sequence_match_accuracy(sequence1: Sequence[Hashable], sequence2: Sequence[Hashable]) -> float:
    """Fraction of positions that agree under the best one-to-one mapping of the labels.

    Labels are matched with the Hungarian algorithm, so the names do not matter:
    ``[0, 0, 1, 2, 2]`` against ``[3, 3, 4, 4, 1]`` gives 0.8.

    Parameters
    ----------
    sequence1, sequence2 : list, tuple or 1-dim array of hashable labels, same non-zero length

    Raises
    ------
    ValueError (DataError)
        If the lengths differ or are zero.
    """
    first = np.asarray(sequence1).tolist() if isinstance(sequence1, np.ndarray) else list(sequence1)
    second = np.asarray(sequence2).tolist() if isinstance(sequence2, np.ndarray) else list(sequence2)
    if not first or len(first) != len(second):
        raise DataError("sequence1 and sequence2 must have the same non-zero length. "
                        f"Received lengths {len(first)} and {len(second)}")
    codes1 = get_list_inverse_index(list(dict.fromkeys(first)))
    codes2 = get_list_inverse_index(list(dict.fromkeys(second)))
    counts = np.zeros((len(codes1), len(codes2)))
    np.add.at(counts, ([codes1[x] for x in first], [codes2[y] for y in second]), 1.0)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(first))
