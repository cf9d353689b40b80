# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""How many parameters implicit knowledge adds to a detector."""
from typing import List, NamedTuple

from mmdet.registry import MODELS
from mmengine.config import Config
from torch import nn

from ..models.layers.implicit import is_implicit_parameter


class ParamCount(NamedTuple):
    """Parameter counts of one model."""
    name: str
    total: int
    implicit: int

    @property
    def share(self) -> float:
        """Implicit parameters as a fraction of all parameters."""
        return self.implicit / self.total


def count_params(name: str, model: nn.Module) -> ParamCount:
    """Count all parameters of ``model`` and those of its implicit layers
    (held by modules named ``implicit_*``)."""
    total = implicit = 0
    for key, param in model.named_parameters():
        total += param.numel()
        if is_implicit_parameter(key):
            implicit += param.numel()
    return ParamCount(name, total, implicit)


def count_config_params(name: str, cfg: Config) -> ParamCount:
    """Build the model of ``cfg`` (no weights are loaded) and count it."""
    return count_params(name, MODELS.build(cfg.model))


def format_table(counts: List[ParamCount]) -> str:
    """A markdown table: model, parameters, implicit parameters, share."""
    lines = [
        '| model | parameters | implicit parameters | implicit share |',
        '| :-- | --: | --: | --: |',
    ]
    for count in counts:
        lines.append(f'| {count.name} | {count.total:,} | '
                     f'{count.implicit:,} | {count.share:.4%} |')
    return '\n'.join(lines)
