"""Seeing the work: learning curves, CV against the leaderboard, one HTML report of every experiment.

`series.py` turns run folders into per-epoch curves (one computation for the PNG/SVG plots and the HTML report),
`curves.py` draws them with matplotlib, `leaderboard.py` joins CV with Kaggle scores and draws CV against LB,
`collect.py` gathers experiments, runs, records and jobs, `html.py` renders the self-contained report.
torch-free; matplotlib and jinja2 are imported only when drawing or rendering.
"""
