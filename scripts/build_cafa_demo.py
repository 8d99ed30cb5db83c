"""Shim: build the CAFA demo data (molremote/demo_data/cafa/); see molremote/tasks/cafa/demo.py."""

from molremote.tasks.cafa.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
