"""Blends: numbered experiments whose members are other experiments (or other blends), with weights.

    from molremote.experiments import blend
    EXPERIMENT = blend(
        members=[{"experiment": 3, "weight": 0.6}, {"experiment": 38, "weight": 0.4}],
        description="demo blend",
    )

A blend has no model and no training: it is evaluated (`molremote evaluate -e N`: the members' out-of-fold
predictions blended row by row, its CV, the blended test submission) and submitted like any experiment.
Weights are numbers (scaled to sum 1: a blend is a weighted MEAN of its members) or all "auto" (fitted on
the members' out-of-fold predictions with the task's metric, >= 0 and summing to 1). A member may itself be a
blend (nesting); cycles, members of another task and members whose file is missing are refused naming the
blend file. Validation and resolution live here; the maths is `molremote.results.blending`'s. Imports no
torch, and nothing from `molremote.experiments` at import time (that module re-exports `blend`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import ExperimentError

if TYPE_CHECKING:  # pragma: no cover
    from .experiments import Registry

BLEND_MODEL = "blend"  # what `ls` shows in the model column
AUTO = "auto"


@dataclass(frozen=True)
class BlendSpec:
    """What a blend file declares (unresolved): its members and a few descriptive fields."""

    members: tuple[dict[str, Any], ...]
    fields: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


def blend(
    *,
    members: list[dict[str, Any]],
    description: str = "",
    tags: list[str] | None = None,
    method: str | None = None,
    id: int | None = None,
) -> BlendSpec:
    """A blend experiment: `members` are {"experiment": id, "weight": float | "auto"}; `method` is how the
    members are averaged (mean | rank | geo | logit; default: the task's)."""
    if not isinstance(members, (list, tuple)):
        raise ExperimentError(f"blend() needs members=[{{'experiment': id, 'weight': w}}, ...], got {members!r}")
    extra: dict[str, Any] = {"description": description, "tags": list(tags or [])}
    if method is not None:
        extra["method"] = method
    return BlendSpec(members=tuple(members), fields=extra, id=id)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlendMember(_Strict):
    experiment: int
    weight: float | Literal["auto"]

    @field_validator("weight")
    @classmethod
    def _non_negative(cls, v: float | str) -> float | str:
        if isinstance(v, float) and not (v >= 0 and v != float("inf")):
            raise ValueError("must be a finite number >= 0 or 'auto'")
        return v


class Blend(_Strict):
    """A resolved blend: members validated (existing, same task, no cycle), with their config hashes."""

    id: int
    slug: str
    description: str = ""
    tags: list[str] = []
    task: str
    method: str | None = None  # None: the task's ensemble default
    members: tuple[BlendMember, ...]
    member_hashes: tuple[str, ...]  # config hash of each member (an experiment's or a blend's)
    member_kinds: tuple[str, ...]  # "experiment" | "blend"
    file: str | None = None

    @property
    def name(self) -> str:
        return f"{self.id:04d}_{self.slug}"

    @property
    def auto(self) -> bool:
        return any(m.weight == AUTO for m in self.members)

    @property
    def config_hash(self) -> str:
        payload = json.dumps(
            {
                "members": [[m.experiment, h, m.weight] for m, h in zip(self.members, self.member_hashes)],
                "method": self.method,
                "task": self.task,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        """The same top-level shape as an experiment's JSON (task/model names), plus kind and members."""
        return {
            "id": self.id,
            "slug": self.slug,
            "kind": "blend",
            "parent": None,
            "description": self.description,
            "tags": list(self.tags),
            "task": {"name": self.task},
            "model": {"name": BLEND_MODEL},
            "method": self.method,
            "members": [
                {"experiment": m.experiment, "weight": m.weight, "kind": k, "config_hash": h}
                for m, k, h in zip(self.members, self.member_kinds, self.member_hashes)
            ],
            "config_hash": self.config_hash,
        }


def resolve_blend(reg: Registry, i: int, _stack: tuple[int, ...] = ()) -> Blend:
    """Validate blend `i` of the registry: members exist, no cycle, one task, weights all numbers or all auto."""
    from .experiments import FILE_RE

    file = str(reg.files[i])
    if i in _stack:
        chain = " -> ".join(map(str, (*_stack, i)))
        raise ExperimentError(f"blend cycle: {chain}", file=str(reg.files[_stack[-1]]), field="members")
    s = reg.spec(i)
    assert isinstance(s, BlendSpec)
    if not s.members:
        raise ExperimentError("a blend needs at least one member", file=file, field="members")
    members: list[BlendMember] = []
    for k, raw in enumerate(s.members):
        where = f"members[{k}]"
        if not isinstance(raw, dict):
            raise ExperimentError(
                f"expected {{'experiment': id, 'weight': number or 'auto'}}, got {raw!r}", file=file, field=where
            )
        try:
            members.append(BlendMember(**raw))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"][:1])
            msg = (
                "unknown key (a member has 'experiment' and 'weight')"
                if err["type"] == "extra_forbidden"
                else err["msg"]
            )
            if err["type"] == "missing":
                msg = "missing (a member needs 'experiment' and 'weight': a number or 'auto')"
            raise ExperimentError(f"{msg} (value {err.get('input')!r})", file=file, field=f"{where}.{loc}") from None
    kinds = {m.weight == AUTO for m in members}
    if len(kinds) > 1:
        raise ExperimentError(
            "weights must be all numbers or all 'auto' (fixed weights are not mixed with fitted ones)",
            file=file,
            field="members",
        )
    if all(m.weight != AUTO for m in members) and sum(float(m.weight) for m in members) <= 0:
        raise ExperimentError("weights sum to 0", file=file, field="members")
    if s.fields.get("method") is not None:
        from .results.averaging import METHODS

        if s.fields["method"] not in METHODS:
            raise ExperimentError(
                f"unknown method {s.fields['method']!r} (choose from {', '.join(METHODS)})", file=file, field="method"
            )
    hashes, mkinds, tasks = [], [], []
    for k, m in enumerate(members):
        if m.experiment not in reg.files:
            near = sorted(reg.files, key=lambda j: abs(j - m.experiment))[:3]
            raise ExperimentError(
                f"member experiment {m.experiment} not found: no experiments/{m.experiment:04d}_*.py "
                f"(nearest ids: {', '.join(map(str, near))})",
                file=file,
                field=f"members[{k}].experiment",
            )
        if reg.is_blend(m.experiment):
            sub = resolve_blend(reg, m.experiment, (*_stack, i))
            hashes.append(sub.config_hash)
            mkinds.append("blend")
            tasks.append(sub.task)
        else:
            try:
                member = reg.resolve(m.experiment)
            except ExperimentError as bad:
                raise ExperimentError(
                    f"member experiment {m.experiment} is invalid: {bad}", file=file, field=f"members[{k}]"
                ) from None
            hashes.append(member.config_hash)
            mkinds.append("experiment")
            tasks.append(member.task.name)
    if len(set(tasks)) > 1:
        named = ", ".join(f"{m.experiment}: {t}" for m, t in zip(members, tasks))
        raise ExperimentError(
            f"members are of different tasks ({named}); a blend has one task", file=file, field="members"
        )
    slug = FILE_RE.match(reg.files[i].name).group(2)  # type: ignore[union-attr]
    try:
        return Blend(
            id=i,
            slug=slug,
            task=tasks[0],
            members=tuple(members),
            member_hashes=tuple(hashes),
            member_kinds=tuple(mkinds),
            file=file,
            **s.fields,
        )
    except ValidationError as invalid:
        first = invalid.errors()[0]
        raise ExperimentError(
            f"{first['msg']} (value {first.get('input')!r})", file=file, field=".".join(map(str, first["loc"]))
        ) from None


def leaf_ids(reg: Registry, i: int) -> list[int]:
    """The plain experiments under blend i (nested blends expanded), in first-seen order."""
    out: list[int] = []
    for m in resolve_blend(reg, i).members:
        for j in leaf_ids(reg, m.experiment) if reg.is_blend(m.experiment) else [m.experiment]:
            if j not in out:
                out.append(j)
    return out


def fixed_leaf_weights(reg: Registry, i: int) -> dict[int, float] | None:
    """Each plain experiment's weight in the whole blend (products down nested blends, summed for an
    experiment met twice), or None when some weight is "auto" (known only after fitting)."""
    b = resolve_blend(reg, i)
    if b.auto:
        return None
    total = sum(float(m.weight) for m in b.members)
    out: dict[int, float] = {}
    for m in b.members:
        share = float(m.weight) / total
        sub = fixed_leaf_weights(reg, m.experiment) if reg.is_blend(m.experiment) else {m.experiment: 1.0}
        if sub is None:
            return None
        for j, w in sub.items():
            out[j] = out.get(j, 0.0) + share * w
    return out


def not_runnable(reg: Registry, i: int) -> ExperimentError:
    """What `train` / `remote` / `derive` say about a blend: it has no model; train its members instead."""
    try:
        leaves = leaf_ids(reg, i)
    except ExperimentError as e:
        return e
    cmds = "; ".join(f"`molremote train -e {j} --all-folds`" for j in leaves)
    return ExperimentError(
        f"experiment {i} is a blend of experiments {', '.join(map(str, leaves))}: it has no model or training "
        f"of its own. Train its members ({cmds}), then evaluate it with `molremote evaluate -e {i}`",
        file=str(reg.files[i]),
    )
