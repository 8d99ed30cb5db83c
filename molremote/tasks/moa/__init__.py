"""MoA (Kaggle `lish-moa`, 1st place): multi-label mechanism-of-action prediction from gene expression (g-) and
cell viability (c-) features. Files: data.py (reading), folds.py, metric.py, preprocess.py, params.py,
results.py (torch-free side), task.py (trainer side), demo.py (builder of the shipped demo data)."""
