"""affinity (protein-ligand "affinity CLIP", ORNL winter classic): the task (`task.py`), its torch-free results
side (`results.py`), pair files and tokens (`data.py`), fold schemes (`folds.py`), metrics (`metrics.py`) and
the KIBA demo data builder (`demo.py`)."""
