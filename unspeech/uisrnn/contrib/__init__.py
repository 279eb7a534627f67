"""Optional extras around UIS-RNN, at the ``uisrnn.contrib`` paths of the ``uisrnn`` library.

* :mod:`~unspeech.uisrnn.contrib.range_search_crp_alpha`: estimate ``crp_alpha`` from the
  training labels (NumPy only).
* :mod:`~unspeech.uisrnn.contrib.contrib_template`: the skeleton a new contribution starts from.
"""

__all__ = ["contrib_template", "range_search_crp_alpha"]
