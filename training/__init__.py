"""Offline training and evaluation of the dense MNIST digit classifier served by ``app``.

Run it with ``python -m training`` (or the console script ``mnist-train``); see
:mod:`training.cli` for the options. The modules, from data to artifacts:

- :mod:`training.idx_files` and :mod:`training.datasets`: read and validate MNIST;
- :mod:`training.augmentation`: random rotations, slants, scalings, shifts, elastic
  distortions and stroke widths of digits;
- :mod:`training.renderings` and :mod:`training.realistic`: training digits drawn as photos,
  scans and canvas exports and passed through the service's own preprocessing (cached);
- :mod:`training.model`: the seed architecture and the convolutional teacher;
  :mod:`training.profiles`: hyperparameters;
- :mod:`training.train`: the seeded fit (teacher, then the distilled dense student);
  :mod:`training.evaluate`: numpy scores;
- :mod:`training.realworld`: the real-world development set, measured, never trained on;
- :mod:`training.reports`: metrics.json, plots and the model card;
  :mod:`training.pipeline`: one run end to end.
"""
