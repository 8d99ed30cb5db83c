"""BELKA (Kaggle `leash-BELKA`): the task (`task.py`), its torch-free results side (`results.py`), the
organisers' metric (`metric.py`), the vectorised SMILES tokenizer (`tokens.py`), full-scale preparation into
memory maps (`prepare.py`, `memmap.py`), synthetic files for tests and benchmarks (`synth.py`) and the demo
data builder (`demo.py`)."""
