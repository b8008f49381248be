"""neuromoco.train: the ``nmoco train`` stages, configs, checkpoints and distributed set-up.

``load_model_from_run`` (in :mod:`neuromoco.train.checkpoint`) is the entry point
for code that only needs a trained backbone.
"""
