"""text2mol (ALTEGRAD ChEBI-20 text -> molecule retrieval): the task (`task.py`), its torch-free results side
(`results.py`), the graph file format and LRAP (`data.py`) and the demo data builder (`demo.py`)."""
