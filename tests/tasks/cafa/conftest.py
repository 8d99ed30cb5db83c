from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from molremote.experiments import validate
from molremote.tasks.base import DEMO_ROOT

DEMO = DEMO_ROOT / "cafa"

# A small ontology that exercises what CAFA's parsing keeps and drops: is_a and part_of inside a namespace, a
# part_of into another namespace (dropped), an obsolete term, an alt_id, a regulates edge (not followed).
TINY_OBO = """format-version: 1.2
data-version: test

[Term]
id: GO:0008150
name: biological_process
namespace: biological_process

[Term]
id: GO:0000001
name: b1
namespace: biological_process
is_a: GO:0008150 ! biological_process

[Term]
id: GO:0000002
name: b2
namespace: biological_process
alt_id: GO:0000009
is_a: GO:0000001 ! b1
relationship: part_of GO:0000003 ! b3

[Term]
id: GO:0000003
name: b3
namespace: biological_process
is_a: GO:0008150 ! biological_process
relationship: regulates GO:0000004 ! b4

[Term]
id: GO:0000004
name: b4
namespace: biological_process
is_a: GO:0008150 ! biological_process
relationship: part_of GO:0005575 ! cellular_component

[Term]
id: GO:0000005
name: old
namespace: biological_process
is_obsolete: true

[Term]
id: GO:0003674
name: molecular_function
namespace: molecular_function

[Term]
id: GO:0000010
name: m1
namespace: molecular_function
is_a: GO:0003674 ! molecular_function

[Term]
id: GO:0005575
name: cellular_component
namespace: cellular_component

[Term]
id: GO:0000020
name: c1
namespace: cellular_component
is_a: GO:0005575 ! cellular_component

[Typedef]
id: part_of
name: part of
"""


@pytest.fixture
def tiny_obo(tmp_path) -> Path:
    p = tmp_path / "tiny.obo"
    p.write_text(TINY_OBO)
    return p


@pytest.fixture
def cafa_copy(tmp_path) -> Path:
    """A writable copy of the shipped demo data."""
    return Path(shutil.copytree(DEMO, tmp_path / "cafa"))


def cafa_exp(root: Path | None = None, folds: dict[str, Any] | None = None, **task: Any):
    return validate(
        {
            "id": 1,
            "slug": "t",
            "task": {"name": "cafa", **task},
            "model": {"name": "protein_mlp"},
            "data": {"root": str(root) if root else None},
            "folds": folds or {"n_folds": 5, "scheme": "random"},
        },
        file=None,
    )
