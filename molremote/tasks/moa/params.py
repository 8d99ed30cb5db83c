"""MoA task parameters (torch-free pydantic): data layout, preprocessing and loss settings."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from ..base import TaskParams


class MoaParams(TaskParams):
    # added with stacking: absent from older experiments' JSON and hash while at their defaults
    omit_when_default: ClassVar[tuple[str, ...]] = ("targets", "stack_quantile", "base_features")

    # --- preprocessing, fitted per fold (preprocess.py); every step is optional
    quantile: bool = True  # QuantileTransformer to a normal distribution: every winner's first step
    n_quantiles: int = 100  # the 1st-place 3-stage NN's value
    pca_genes: int = 0  # PCA components appended from the g- columns (2-stage NN: 50); 0 = none
    pca_cells: int = 0  # ... from the c- columns (2-stage NN: 15)
    fa_genes: int = 0  # factor-analysis components from the g- columns (3-stage NN: 90)
    fa_cells: int = 0  # ... from the c- columns (3-stage NN: 50)
    umap_genes: int = 0  # UMAP components from the (transformed) g- columns (3-stage NN: 45; needs umap-learn)
    umap_cells: int = 0  # ... from the c- columns (3-stage NN: 25)
    umap_neighbors: int = 15  # umap-learn's default neighbourhood, which the winners kept
    variance_threshold: float | None = None  # drop features with variance below this (2-stage NN: 0.5)
    # "train": fit on the fold's training rows only (no test information); "train+test": also on the test
    # features, as the winners did (unsupervised, so no label leaks; the fold's validation rows stay out)
    fit_on: Literal["train", "train+test"] = "train"
    seed: int = 0  # random_state of the quantile subsample, PCA and FA (fixed: identical features on refit)
    # --- folds: `folds.scheme` = "mskf" (multilabel stratified), "drug" (the winners' drug-aware MSKF) or "kfold"
    drug_threshold: int = 18  # drug folds: drugs with at most this many rows are stratified as whole drugs
    # --- targets: "scored" (the competition's 206) or "nonscored" (the 402 extra MoAs; columns with no positive
    # training row dropped, leaving 332 in MoA): stage 1 of the 3-stage NN learns these, and its predictions
    # feed stage 2 through `data.stack`. Folds always stratify on the scored targets, so stages share folds.
    targets: Literal["scored", "nonscored"] = "scored"
    # --- stacked predictions (`data.stack`): appended after the features above
    stack_quantile: bool = False  # QuantileTransformer (n_quantiles, normal) per stacked column, as stages 2-3 did
    base_features: bool = True  # False: the model sees only the stacked predictions (stage 3 of the 3-stage NN)
    # --- loss
    label_smoothing: float = 0.001  # simple NN / TabNet: targets pulled to [s/2, 1-s/2] (smoothed BCE)
    # --- DeepInsight CNN input (deepinsight.py): norm-2 log scaling and the t-SNE feature -> pixel mapping
    log_scale: bool = False  # DeepInsight's "norm-2" log scaling of the g- / c- blocks instead of the quantile map
    deepinsight_pixels: int = 0  # image side; 0 = no mapping (winners: 300 for EfficientNet-B3, 224 for ResNeSt)
    deepinsight_perplexity: float = 5.0  # the winners' t-SNE perplexity (cosine metric)
    deepinsight_method: Literal["exact", "barnes_hut"] = "exact"  # the winners' exact t-SNE

    @model_validator(mode="after")
    def _one_scaling(self) -> MoaParams:
        if self.log_scale and self.quantile:
            raise ValueError("log_scale and quantile are two scalings of the same columns: set quantile=False")
        return self
