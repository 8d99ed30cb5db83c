#!/usr/bin/env python
"""Shim: the demo-data builder lives in `molremote.tasks.text2mol.demo`
(run `python -m molremote.tasks.text2mol.demo --help`)."""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
runpy.run_module("molremote.tasks.text2mol.demo", run_name="__main__")
