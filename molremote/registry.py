"""Lazy name -> implementation maps. Entries are import strings, so listing and validating experiments
never imports an implementation (and therefore never imports torch)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel


def import_string(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Entry:
    params: str  # "module:Class" of a torch-free pydantic model
    impl: str  # "module:callable" of the implementation (may import torch)

    def params_class(self) -> type[BaseModel]:
        return import_string(self.params)

    def load(self) -> Any:
        return import_string(self.impl)
