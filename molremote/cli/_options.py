"""Options shared by several commands, declared once (`Annotated` aliases, as huggingface_hub's CLI does), so
`-e` or `--json` means the same thing and reads the same in every command's help."""

from __future__ import annotations

from typing import Annotated

import typer

Experiment = Annotated[int, typer.Option("-e", "--experiment", help="Experiment id.")]
ExperimentOpt = Annotated[int | None, typer.Option("-e", "--experiment", help="Experiment id.")]
# status / logs / cancel / fetch: the experiment picks its latest job
JobExperiment = Annotated[
    int | None, typer.Option("-e", "--experiment", help="The experiment's latest job (unfinished first).")
]
JobId = Annotated[str | None, typer.Option("--job", help="A job id from `molremote status`.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON on stdout).")]
Fold = Annotated[int | None, typer.Option("--fold", "-f", help="Fold (default: the experiment's).")]
AllFolds = Annotated[
    bool, typer.Option("--all-folds", help="Every fold the experiment lists (and each of its training.seeds).")
]
Seed = Annotated[
    int | None,
    typer.Option("--seed", help="One of the experiment's training.seeds (default: every seed of the folds)."),
]
# None when no --set is given (typer's default for a list option): every consumer takes `list[str] | None`
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="key.path=value override of the experiment (recorded in the manifest)."),
]
KaggleAccount = Annotated[str | None, typer.Option("--account", help="Kaggle account from molremote.toml.")]
MaxTime = Annotated[
    str | None, typer.Option("--max-time", help="Trainer wall-clock limit, e.g. 11h30m: checkpoint and exit 75.")
]
Message = Annotated[str | None, typer.Option("--message", "-m", help="A note appended to the description.")]
NoPull = Annotated[bool, typer.Option("--no-pull", help="Do not pull missing folds from the store.")]
GPUs = Annotated[
    int | None, typer.Option("--gpus", help="GPUs (processes under torchrun/DDP) per fold; per node on SLURM.")
]
