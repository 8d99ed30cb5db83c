"""MoA (Kaggle lish-moa) on the real data in data/moa: the 1st place DeepInsight ResNeSt V2
(`final/Best LB/Training/deepinsight-resnest-lightning-v2-train.ipynb`): as 0230 with the ablated ResNeSt
(resnest50_fast_2s2x40d) at 224 px, batch 128 and dropout 0.2 on the head (V2). Needs the optional backbone
package (`pip install --no-deps resnest==0.0.5`) and a GPU. Refuses with exit 3 and the download command when
data/moa is absent."""
from molremote.experiments import derive

EXPERIMENT = derive(
    230,
    description="MoA 1st place DeepInsight ResNeSt50-fast-2s2x40d (V2) on 224x224 t-SNE feature maps",
    tags=["moa", "1st-place", "deepinsight", "cnn", "gpu"],
    task={"deepinsight_pixels": 224},  # resolution = image size = 224 for ResNeSt
    model={"backbone": "resnest50_fast_2s2x40d",  # the ablated ResNeSt: near the best variant, smaller, faster
           "dropout": 0.2},  # V2: dropout 0.2 on the final FC
    training={"batch_size": 128,  # 128 for the ablated ResNeSt
              "seed": 43},  # V2 was trained "with a different seed"
)
