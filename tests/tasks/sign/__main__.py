"""`python -m tests.tasks.sign <command> ...`: the molremote CLI with the example task registered."""

from tests.tasks.sign import register

register()
from molremote.cli import main  # noqa: E402

main()
