"""neuromoco.pipeline: what the ``nmoco`` subcommands do, as functions (the CLI only parses and prints errors).

- :mod:`neuromoco.pipeline.runs`: load a trained run and find its float reference.
- :mod:`neuromoco.pipeline.deploy`: ``export_run``, a run to netx (+ ONNX, NIR) with sidecars.
- :mod:`neuromoco.pipeline.simulate`: ``simulate_file``, a netx file on a spike array.
- :mod:`neuromoco.pipeline.demo`: ``run_demo``, the whole chain on the built-in data.

With :mod:`neuromoco.cli`, these are the modules of ``neuromoco`` that import
``export`` and ``sims``; each does so inside its functions, and this file
imports none of them, so ``nmoco --help`` loads neither torch nor Lava.
"""
