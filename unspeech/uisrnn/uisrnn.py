"""The module path of the ``uisrnn`` library's estimator: ``from unspeech.uisrnn.uisrnn import UISRNN``.

The class lives in :mod:`unspeech.uisrnn.model`; this module only re-exports it (and
:func:`~unspeech.uisrnn.parallel.parallel_predict`, which the library defines next to it), so
code written against ``uisrnn.uisrnn`` runs after changing the package name.
"""

from unspeech.uisrnn.model import UISRNN
from unspeech.uisrnn.parallel import parallel_predict

__all__ = ["UISRNN", "parallel_predict"]
