"""The anchor of the report's scale benchmark: Optuna's own plots of the same study.

What a user of plain Optuna runs to see a study: ``optuna.load_study`` and the five plots
of ``optuna.visualization.matplotlib`` that draw what the report draws (optimisation
history, every trial's intermediate values, parameter importances with Optuna's default
evaluator, the objective against each parameter, parallel coordinates), each saved as a
PNG into OUT. Prints a JSON line: the trials read and the bytes written.

    python benchmarks/anchor_visualization.py sqlite:////tmp/big.db big /tmp/plots
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path


def main() -> None:
    url, name, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for plot in (
        vis.plot_optimization_history,
        vis.plot_intermediate_values,
        vis.plot_param_importances,
        vis.plot_slice,
        vis.plot_parallel_coordinate,
    ):
        drawn = plot(study)
        figure = (drawn.flat[0] if hasattr(drawn, "flat") else drawn).figure
        path = out / f"{plot.__name__}.png"
        figure.savefig(path, dpi=72)
        plt.close(figure)
        written += path.stat().st_size
    print(json.dumps({"trials": len(study.trials), "bytes": written}), flush=True)
    sys.stdout.flush()
    os._exit(0)  # as hpsearch's command does: no teardown of the objects read


if __name__ == "__main__":
    main()
