"""Numbered experiments: the single source of truth.

One file per experiment, `experiments/NNNN_<slug>.py`, declaring

    from molremote.experiments import experiment, derive
    EXPERIMENT = experiment(task="belka", model={"name": "cnn1d"}, training={"epochs": 3})
    EXPERIMENT = derive(610, model={"num_layers": 7}, description="fat GCN")

The id comes from the file name. Resolution merges a child's overrides into its parent's resolved form and
validates the result (unknown keys, unknown tasks or models, wrong types fail naming file and field). The
resolved, frozen `Experiment` has a JSON form and a content hash; that JSON is what travels to remote
machines, manifests and W&B. This module imports no torch.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .blends import BlendSpec, blend  # noqa: F401 - `blend` is declared in experiment files from here
from .errors import ExperimentError

FILE_RE = re.compile(r"^(\d{4})_([a-z0-9][a-z0-9_]*)\.py$")
# Sections whose content is part of the run identity (hash). Description, tags and backend defaults
# change where or how a run is launched, not what it computes.
HASHED_SECTIONS = ("task", "model", "training", "folds", "data")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Training(_Strict):
    epochs: int = 10
    batch_size: int = 256
    eval_batch_size: int | None = None  # None: 2 x batch_size (no grads, twice the room)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    # onecycle: torch's OneCycleLR stepped per batch (cosine up to max_lr over pct_start of the steps, then down
    # to max_lr / div_factor / final_div_factor; Adam's beta1 / SGD's momentum cycled 0.95 -> 0.85 -> 0.95)
    scheduler: Literal["none", "step", "cosine", "plateau", "onecycle"] = "none"
    max_lr: float | None = None  # onecycle peak (None: lr); other param groups scaled by their lr / lr
    pct_start: float = 0.3  # onecycle: share of the steps spent rising (torch's default)
    div_factor: float = 25.0  # onecycle: the first lr is max_lr / div_factor (torch's default)
    final_div_factor: float = 1e4  # onecycle: the last lr is max_lr / div_factor / final_div_factor
    cycle_momentum: bool = True  # onecycle: cycle Adam's beta1 / SGD's momentum inversely to the lr (torch's)
    milestones: list[int] = []  # step scheduler: epochs at which lr *= gamma (BELKA 5th: 1e-3/1e-4/1e-5)
    gamma: float = 0.1
    plateau_patience: int = 1
    warmup_steps: int = 0
    grad_clip: float | None = None
    amp: Literal["none", "bf16", "fp16"] = "none"  # only applied on CUDA; CPU runs in fp32
    seed: int = 42
    # Several seeds: one run per (fold, seed), each trained with `seed` set to that seed, keyed
    # `fold<k>-s<seed>-<hash>`; `evaluate` averages the seeds within a fold, then the folds. The hash leaves the
    # list (and `seed`) out, so adding a seed keeps the runs already made. None: one run per fold (`seed`).
    seeds: list[int] | None = None
    checkpoint_every_s: float = 300.0  # a few minutes: bounded loss on preemption, little I/O
    checkpoint_every_steps: int | None = None  # mainly for tests and very slow steps
    early_stopping_patience: int | None = None  # epochs without improvement of the validation metric
    max_steps_per_epoch: int | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads for torch (None: torch's default, one per core). Tiny models run faster on 1 thread: their
    # ops are too small to split, and thread hand-offs dominate (measured on the demo cnn1d, README).
    threads: int | None = None
    log_every_steps: int = 10

    @field_validator("epochs", "batch_size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be > 0")
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError("must be a non-empty list of distinct seeds >= 0 (or None for one run per fold)")
        return v

    @field_validator("pct_start")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError("must be between 0 and 1 (exclusive)")
        return v


# Training fields added after experiments had run: absent from the JSON (and the hash) at their defaults, so
# adding a field never turns existing runs into runs of an "old config"
TRAINING_ADDED_LATER = ("seeds", "max_lr", "pct_start", "div_factor", "final_div_factor", "cycle_momentum")


class Folds(_Strict):
    n_folds: int = 5
    scheme: str = "random"  # task-defined: e.g. belka also has "building_block" (out-of-domain holdout)
    seed: int = 0
    run: list[int] | None = None  # folds trained by --all-folds (None: all n_folds)
    default: int = 0


class StackInput(_Strict):
    """Another experiment's predictions as input features (stacking; molremote/stacking.py).

    The user writes `experiment` (and `use`); the registry fills the rest from the parent's resolved form, so
    the resolved JSON names the parent's runs exactly and the parent's config hash is part of this one's."""

    experiment: int
    # "oof+test": the parent's out-of-fold predictions as features of the training rows (each row's from the
    # parent run that validated it) and its test predictions averaged over its folds for the test rows
    use: Literal["oof+test"] = "oof+test"
    name: str | None = None  # filled at resolution: the parent's NNNN_slug
    config_hash: str | None = None  # ... its config hash (its runs' keys)
    task: str | None = None  # ... its task (which reads its prediction files)
    seeds: list[int] | None = None  # ... its training.seeds (averaged within each fold)
    folds: dict[str, Any] | None = None  # ... its folds section (checked against this experiment's)


class Data(_Strict):
    root: str | None = None  # None: the demo data shipped with the package
    kaggle_datasets: list[str] = []  # "owner/slug" prepared datasets a kernel mounts
    stack: list[StackInput] = []  # other experiments' predictions appended as features (see StackInput)


class KaggleDefaults(_Strict):
    accelerator: str = "NvidiaTeslaT4"
    internet: bool = True
    session_hours: float = 12.0  # Kaggle GPU session limit
    margin_minutes: float = 30.0  # stop, checkpoint and sync this long before the limit
    max_sessions: int = 5


class SlurmDefaults(_Strict):
    partition: str | None = None
    account: str | None = None
    time: str = "01:00:00"
    gpus: int = 0  # per node
    nodes: int = 1  # > 1: one srun task per node, each a torchrun (DDP across nodes)
    cpus: int = 4
    mem: str = "16G"
    signal_margin_s: int = 300
    max_restarts: int = 5


class SshDefaults(_Strict):
    gpus: int = 0


class Backend(_Strict):
    kaggle: KaggleDefaults = KaggleDefaults()
    slurm: SlurmDefaults = SlurmDefaults()
    ssh: SshDefaults = SshDefaults()


class Section(_Strict):
    """A named component (task or model) and its validated parameters."""

    name: str
    params: dict[str, Any] = {}

    def flat(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


class Experiment(_Strict):
    id: int
    slug: str
    parent: int | None = None
    description: str = ""
    tags: list[str] = []
    task: Section
    model: Section
    training: Training = Training()
    folds: Folds = Folds()
    data: Data = Data()
    backend: Backend = Backend()
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude={"file"})
        d["task"], d["model"] = self.task.flat(), self.model.flat()
        # fields added later are left out at their defaults, so older experiments keep their JSON and hash
        for k in TRAINING_ADDED_LATER:
            if k in d["training"] and d["training"][k] == Training.model_fields[k].default:
                d["training"].pop(k)
        if not d["data"].get("stack"):
            d["data"].pop("stack", None)
        return d

    @cached_property
    def config_hash(self) -> str:
        d = self.to_dict()
        hashed = {k: d[k] for k in HASHED_SECTIONS}
        if self.training.seeds is not None:  # the seed is in the run key; the list is which runs exist
            hashed["training"] = {k: v for k, v in d["training"].items() if k not in ("seed", "seeds")}
        payload = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        """The portable form: what travels to remote machines, manifests and W&B config."""
        return {**self.to_dict(), "config_hash": self.config_hash}

    @property
    def name(self) -> str:
        return f"{self.id:04d}_{self.slug}"

    def fold_list(self) -> list[int]:
        return list(self.folds.run) if self.folds.run is not None else list(range(self.folds.n_folds))

    def select_folds(self, fold: int | None = None, all_folds: bool = False) -> list[int]:
        """The folds a command means: every listed fold, one given fold, or the default; checked in range."""
        folds = self.fold_list() if all_folds else [self.folds.default if fold is None else fold]
        for f in folds:
            if not 0 <= f < self.folds.n_folds:
                raise ExperimentError(f"fold {f} out of range 0..{self.folds.n_folds - 1}", field="--fold")
        return folds

    # ------------------------------------------------------------------ seeds
    def seed_list(self) -> list[int | None]:
        """The seeds a fold is trained with: training.seeds, or [None] (one run, training.seed, no seed in its key)."""
        return list(self.training.seeds) if self.training.seeds is not None else [None]

    @property
    def run_seed(self) -> int | None:
        """This run's seed when the experiment lists several (it then appears in the run key), else None."""
        return self.training.seed if self.training.seeds is not None else None

    def with_seed(self, seed: int | None) -> Experiment:
        """The experiment one (fold, seed) run trains: training.seed = seed (same config hash). None: itself."""
        if seed is None:
            return self
        if self.training.seeds is None or seed not in self.training.seeds:
            raise ExperimentError(
                f"seed {seed} is not one of experiment {self.id}'s training.seeds {self.training.seeds}",
                field="--seed",
            )
        d = self.to_dict()
        d["training"]["seed"] = seed
        return validate(d, file=self.file)

    def select_runs(
        self, fold: int | None = None, all_folds: bool = False, seed: int | None = None
    ) -> list[tuple[int, int | None]]:
        """(fold, seed) of every run a command means: select_folds() times every seed (or the one given)."""
        folds = self.select_folds(fold, all_folds)
        if seed is None:
            seeds = self.seed_list()
        elif self.training.seeds is None:
            raise ExperimentError(
                f"--seed {seed}: experiment {self.id} lists no training.seeds (one run per fold; change its "
                "seed with --set training.seed=N)",
                field="--seed",
            )
        else:
            self.with_seed(seed)  # checks it is listed
            seeds = [seed]
        return [(f, s) for f in folds for s in seeds]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Experiment:
        """Rebuild from the portable form (remote machines never import experiments/*.py)."""
        d = {k: v for k, v in d.items() if k != "config_hash"}
        exp = validate(d, file=None)
        if "config_hash" in d and d["config_hash"] != exp.config_hash:  # pragma: no cover - defensive
            raise ExperimentError("config_hash does not match content", field="config_hash")
        return exp


# --------------------------------------------------------------------------------------------- declaring
@dataclass(frozen=True)
class Spec:
    """What an experiment file declares: an optional parent and overrides (unresolved)."""

    parent: int | None
    overrides: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


def _norm_section(v: Any) -> Any:
    return {"name": v} if isinstance(v, str) else v


def experiment(*, id: int | None = None, **fields: Any) -> Spec:
    """A root experiment (no parent). `task` and `model` may be a name or a dict with `name`."""
    return Spec(parent=None, overrides=_normalise(fields), id=id)


def derive(parent: int, *, id: int | None = None, **overrides: Any) -> Spec:
    """An experiment that inherits everything from `parent` and overrides parts of it."""
    if not isinstance(parent, int):
        raise ExperimentError(f"derive() needs a parent experiment id (int), got {parent!r}", field="parent")
    return Spec(parent=parent, overrides=_normalise(overrides), id=id)


def _normalise(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    for k in ("task", "model"):
        if k in d:
            d[k] = _norm_section(d[k])
    return d


# ------------------------------------------------------------------------------------------- validation
def _field_path(loc: tuple) -> str:
    return ".".join(str(x) for x in loc)


def _validate_section(kind: str, raw: Any, file: str | None) -> Section:
    from .models import MODELS
    from .tasks import TASKS

    registry = TASKS if kind == "task" else MODELS
    if not isinstance(raw, dict) or "name" not in raw:
        raise ExperimentError(f"{kind} needs a 'name' (one of {sorted(registry)})", file=file, field=kind)
    raw = dict(raw)
    name = raw.pop("name")
    raw.pop("params", None) if isinstance(raw.get("params"), dict) and not raw["params"] else None
    if name not in registry:
        near = difflib.get_close_matches(str(name), registry, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(sorted(registry))}"
        raise ExperimentError(f"unknown {kind} '{name}'{hint}", file=file, field=f"{kind}.name")
    params_cls = registry[name].params_class()
    try:
        params = params_cls(**raw)
    except ValidationError as e:
        err = e.errors()[0]
        path = f"{kind}.{_field_path(err['loc'])}"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(str(err["loc"][-1]), params_cls.model_fields, n=3)
            msg = f"unknown key for {kind} '{name}'" + (f"; did you mean {', '.join(near)}?" if near else "")
        raise ExperimentError(
            f"{msg} (value {err.get('input')!r})" if err["type"] != "extra_forbidden" else msg, file=file, field=path
        ) from None
    dumped = params.model_dump(mode="json")
    for k in getattr(params_cls, "omit_when_default", ()):  # added later: absent at its default (same hash)
        if k in dumped and dumped[k] == params_cls.model_fields[k].get_default(call_default_factory=True):
            dumped.pop(k)
    return Section(name=name, params=dumped)


def validate(d: dict[str, Any], *, file: str | None) -> Experiment:
    d = dict(d)
    from .secrets import first_secret  # the config travels to scripts, kernels, manifests and W&B

    if hit := first_secret({k: v for k, v in d.items() if k != "file"}):
        raise ExperimentError(
            f"holds a {hit[2]} ({hit[1]!r}); secrets never go in an experiment (jobs read "
            f"them from the environment: HF_TOKEN, WANDB_API_KEY, Kaggle Secrets)",
            file=file,
            field=hit[0],
        )
    for k in ("task", "model"):
        if k not in d:
            raise ExperimentError(f"missing '{k}'", file=file, field=k)
        d[k] = _validate_section(k, _norm_section(d[k]), file)
    try:
        return Experiment(**d, file=file)
    except ValidationError as e:
        err = e.errors()[0]
        path = _field_path(err["loc"])
        if err["type"] == "extra_forbidden":
            known = _known_keys(path.rsplit(".", 1)[0] if "." in path else "")
            near = difflib.get_close_matches(path.rsplit(".", 1)[-1], known, n=3)
            raise ExperimentError(
                "unknown key" + (f"; did you mean {', '.join(near)}?" if near else ""), file=file, field=path
            ) from None
        raise ExperimentError(f"{err['msg']} (value {err.get('input')!r})", file=file, field=path) from None


def _known_keys(section: str) -> list[str]:
    cls: type[BaseModel] = Experiment
    for part in filter(None, section.split(".")):
        f = cls.model_fields.get(part)
        if f is None or not (isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)):
            return []
        cls = f.annotation
    return list(cls.model_fields)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `over` into a copy of `base`. A task/model section whose name changes is replaced whole."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k in ("task", "model") and isinstance(v, dict) and isinstance(out.get(k), dict):
            if "name" in v and v["name"] != out[k].get("name"):
                out[k] = copy.deepcopy(v)
                continue
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ------------------------------------------------------------------------------------------- overrides
def parse_set(expr: str) -> tuple[str, Any]:
    """`key.path=value`; the value is JSON when it parses as JSON (numbers, booleans, lists), else a string."""
    if "=" not in expr:
        raise ExperimentError(f"--set expects key.path=value, got {expr!r}", field=expr)
    key, raw = expr.split("=", 1)
    key = key.strip()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def apply_overrides(exp: Experiment, sets: list[str] | None) -> Experiment:
    """Apply `--set` overrides to a resolved experiment; unknown keys and wrong types are refused."""
    if not sets:
        return exp
    d = exp.to_dict()
    for expr in sets:
        key, value = parse_set(expr)
        parts = key.split(".")
        node = d
        for i, p in enumerate(parts[:-1]):
            if not isinstance(node.get(p), dict):
                known = list(node) if isinstance(node, dict) else []
                near = difflib.get_close_matches(p, known, n=3)
                raise ExperimentError(
                    "unknown key" + (f"; did you mean {', '.join(near)}?" if near else ""),
                    field=".".join(parts[: i + 1]),
                )
            node = node[p]
        if parts[-1] not in node and not _omitted_field(d, parts):
            near = difflib.get_close_matches(parts[-1], list(node), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ExperimentError(f"unknown key in --set {expr!r}" + hint, field=key)
        node[parts[-1]] = value
    try:
        return validate(d, file=f"--set {' '.join(sets)}")
    except ExperimentError as e:
        raise ExperimentError(str(e).split(": ", 1)[-1], file="--set", field=e.field) from None


def _omitted_field(d: dict[str, Any], parts: list[str]) -> bool:
    """Whether `parts` names a field the resolved JSON leaves out at its default (training.seeds, data.stack,
    a task's `omit_when_default` parameters), which --set may still set."""
    if len(parts) == 2 and parts[0] in ("task", "model"):
        from .models import MODELS
        from .tasks import TASKS

        reg = TASKS if parts[0] == "task" else MODELS
        name = d.get(parts[0], {}).get("name")
        return name in reg and parts[1] in getattr(reg[name].params_class(), "omit_when_default", ())
    return parts[-1] in _known_keys(".".join(parts[:-1]))


def diff(a: Experiment, b: Experiment) -> list[tuple[str, Any, Any]]:
    """Flattened key paths whose values differ between two resolved experiments."""
    fa, fb = _flatten(a.to_dict()), _flatten(b.to_dict())
    skip = {"id", "slug", "parent"}
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if k not in skip and fa.get(k) != fb.get(k)]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


# --------------------------------------------------------------------------------------------- registry
class Registry:
    """The experiments of one folder: discovery, loading and resolution."""

    def __init__(self, directory: Path | None = None):
        from .project import experiments_dir

        self.dir = Path(directory) if directory else experiments_dir()
        self._files: dict[int, Path] | None = None
        self._specs: dict[int, Spec | BlendSpec] = {}
        self._resolved: dict[int, Experiment] = {}

    @property
    def files(self) -> dict[int, Path]:
        if self._files is None:
            files: dict[int, Path] = {}
            if not self.dir.is_dir():
                from .project import not_a_project

                raise not_a_project(self.dir)
            if self.dir.is_dir():
                for p in sorted(self.dir.glob("*.py")):
                    if p.name.startswith("_"):
                        continue
                    m = FILE_RE.match(p.name)
                    if not m:
                        raise ExperimentError(
                            "experiment files must be named NNNN_<slug>.py (4-digit id, lowercase slug)", file=str(p)
                        )
                    i = int(m.group(1))
                    if i in files:
                        raise ExperimentError(f"duplicate experiment id {i}: also in {files[i].name}", file=str(p))
                    files[i] = p
            self._files = files
        return self._files

    def ids(self) -> list[int]:
        return sorted(self.files)

    def _missing(self, i: int, what: str = "experiment") -> ExperimentError:
        near = sorted(self.files, key=lambda j: abs(j - i))[:3]
        hint = f"; nearest ids: {', '.join(map(str, near))}" if near else f"; no experiments in {self.dir}"
        return ExperimentError(f"unknown {what} id {i}{hint}")

    def spec(self, i: int) -> Spec | BlendSpec:
        if i in self._specs:
            return self._specs[i]
        if i not in self.files:
            raise self._missing(i)
        path = self.files[i]
        mod_name = f"_molremote_experiment_{i:04d}"
        try:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except ExperimentError as e:
            raise ExperimentError(str(e), file=str(path)) from None
        except SystemExit as e:  # would end `ls`/`show` silently: it is this file's error
            raise ExperimentError(
                f"calls sys.exit({e.code if e.code is not None else ''}) when imported; an "
                "experiment file must only define EXPERIMENT",
                file=str(path),
            ) from None
        except Exception as e:  # a malformed file: syntax error, bad import, ...
            raise ExperimentError(f"cannot load: {type(e).__name__}: {e}", file=str(path)) from None
        finally:
            sys.modules.pop(mod_name, None)
        s = getattr(module, "EXPERIMENT", None)
        if not isinstance(s, (Spec, BlendSpec)):
            raise ExperimentError(
                "must define EXPERIMENT = experiment(...), derive(parent_id, ...) or blend(members=[...])",
                file=str(path),
                field="EXPERIMENT",
            )
        if s.id is not None and s.id != i:
            raise ExperimentError(f"declares id {s.id} but the file name says {i}", file=str(path), field="id")
        self._specs[i] = s
        return s

    def resolve(self, i: int, _stack: tuple[int, ...] = ()) -> Experiment:
        if i in self._resolved:
            return self._resolved[i]
        if i in _stack:
            chain = " -> ".join(map(str, (*_stack, i)))
            raise ExperimentError(f"parent cycle: {chain}", file=str(self.files[_stack[-1]]), field="parent")
        s = self.spec(i)
        if isinstance(s, BlendSpec):  # no model to train or derive from: molremote.blends says what to do
            from .blends import not_runnable

            raise not_runnable(self, i)
        file = str(self.files[i])
        base: dict[str, Any] = {}
        if s.parent is not None:
            if s.parent not in self.files:
                e = self._missing(s.parent, "parent")
                raise ExperimentError(str(e), file=file, field="parent")
            base = self.resolve(s.parent, (*_stack, i)).to_dict()
            base.pop("description", None)
        for forbidden in ("id", "slug", "parent", "file"):
            if forbidden in s.overrides:
                raise ExperimentError(
                    f"'{forbidden}' comes from the file name / derive(), not a field", file=file, field=forbidden
                )
        d = merge(base, s.overrides)
        slug = FILE_RE.match(self.files[i].name).group(2)  # type: ignore[union-attr]
        d.update(id=i, slug=slug, parent=s.parent)
        if isinstance(d.get("data"), dict) and d["data"].get("stack"):
            d["data"] = {**d["data"], "stack": self._stack_inputs(d["data"]["stack"], file, (*_stack, i))}
        exp = validate(d, file=file)
        self._resolved[i] = exp
        return exp

    def _stack_inputs(self, entries: Any, file: str, stack: tuple[int, ...]) -> list[Any]:
        """`data.stack` with each parent's name, config hash, task, seeds and folds filled in (resolving it)."""
        if not isinstance(entries, list):
            raise ExperimentError(
                f"must be a list of {{'experiment': id}}, got {entries!r}", file=file, field="data.stack"
            )
        out = []
        for j, e in enumerate(entries):
            where = f"data.stack.{j}.experiment"
            pid = e.get("experiment") if isinstance(e, dict) else None
            if not isinstance(pid, int) or isinstance(pid, bool):
                raise ExperimentError(f"needs an experiment id (int), got {e!r}", file=file, field=where)
            if pid not in self.files:
                raise ExperimentError(str(self._missing(pid, "stacked experiment")), file=file, field=where)
            if pid in stack:
                chain = " -> ".join(map(str, (*stack, pid)))
                raise ExperimentError(f"stacking cycle: {chain}", file=file, field=where)
            p = self.resolve(pid, stack)
            folds = {k: v for k, v in p.folds.model_dump(mode="json").items() if k in ("n_folds", "scheme", "seed")}
            out.append(
                {
                    **e,
                    "name": p.name,
                    "config_hash": p.config_hash,
                    "task": p.task.name,
                    "seeds": p.training.seeds,
                    "folds": folds,
                }
            )
        return out

    def all(self) -> list[Experiment]:
        """Every plain experiment (blends have no configuration of their own: `blends()`)."""
        return [self.resolve(i) for i in self.ids() if not self.is_blend(i)]

    # blends (molremote/blends.py): numbered experiments whose members are other experiments
    def is_blend(self, i: int) -> bool:
        return isinstance(self.spec(i), BlendSpec)

    def blend(self, i: int):  # -> molremote.blends.Blend
        from .blends import resolve_blend

        if not self.is_blend(i):
            raise ExperimentError(f"experiment {i} is not a blend", file=str(self.files[i]))
        return resolve_blend(self, i)

    def resolve_any(self, i: int):  # -> Experiment | molremote.blends.Blend
        return self.blend(i) if self.is_blend(i) else self.resolve(i)


def load(i: int, sets: list[str] | None = None, directory: Path | None = None) -> Experiment:
    return apply_overrides(Registry(directory).resolve(i), sets or [])
