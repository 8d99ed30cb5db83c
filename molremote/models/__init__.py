"""Architectures by name. Building one imports torch; listing or validating does not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..registry import Entry

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment

MODELS: dict[str, Entry] = {
    "cnn1d": Entry("molremote.models.params:Cnn1dParams", "molremote.models.cnn1d:build"),
    "gcn_text": Entry("molremote.models.params:GcnTextParams", "molremote.models.gcn_text:build"),
    "transformer": Entry("molremote.models.params:TransformerParams", "molremote.models.transformer:build"),
    "mamba": Entry("molremote.models.params:MambaParams", "molremote.models.mamba:build"),
    "tabular_mlp": Entry("molremote.models.params:TabularMlpParams", "molremote.models.tabular_mlp:build"),
    "clip_pl": Entry("molremote.models.params:ClipPlParams", "molremote.models.clip_pl:build"),
    "protein_mlp": Entry("molremote.models.params:ProteinMlpParams", "molremote.models.protein_heads:build_mlp"),
    "protein_multitask": Entry(
        "molremote.models.params:ProteinMultitaskParams", "molremote.models.protein_heads:build_multitask"
    ),
    "tabnet": Entry("molremote.models.params:TabNetParams", "molremote.models.tabnet:build"),
    "two_heads": Entry("molremote.models.params:TwoHeadsParams", "molremote.models.two_heads:build"),
    "deepinsight": Entry("molremote.models.params:DeepInsightParams", "molremote.models.deepinsight:build"),
}


def build_model(exp: Experiment, info: dict[str, Any]) -> Any:
    """Instantiate the experiment's model; `info` comes from the task (vocab size, outputs, feature dims)."""
    from ..errors import ExperimentError

    build = MODELS[exp.model.name].load()
    params = MODELS[exp.model.name].params_class()(**exp.model.params)
    try:
        return build(params, info)
    except (KeyError, ValueError) as e:
        raise ExperimentError(
            f"model '{exp.model.name}' cannot be built for task '{exp.task.name}': {e}", file=exp.file, field="model"
        ) from None
