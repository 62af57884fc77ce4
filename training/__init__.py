"""Offline training and evaluation of the dense MNIST digit classifier served by ``app``.

Run it with ``python -m training`` (or the console script ``mnist-train``); see
:mod:`training.cli` for the options. The modules, from data to artifacts:

- :mod:`training.idx_files` and :mod:`training.datasets`: read and validate MNIST;
- :mod:`training.augmentation`: random small rotations, scalings and shifts of digits;
- :mod:`training.model`: the seed architecture; :mod:`training.profiles`: hyperparameters;
- :mod:`training.train`: the seeded fit; :mod:`training.evaluate`: numpy scores;
- :mod:`training.reports`: metrics.json, plots and the model card;
  :mod:`training.pipeline`: one run end to end.
"""
