# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What YOLOR put into a model: one place to ask.

The modules that own implicit layers (:class:`~.foldable.FoldableMixin`: a
neck's or backbone's feature alignment, a neck's output convs, refined
prediction layers) each say what their implicits act on; these functions
walk a model and ask them. Analysis, plots, the zoo sweep and the tests use
them rather than parsing module names.
"""
from typing import Dict, List

from torch import nn

from .foldable import ALIGNMENT, FoldableMixin, ImplicitSite
from .heads.refinement import PredictionRefinementMixin
from .layers import BaseImplicit


def implicit_sites(model: nn.Module) -> List[ImplicitSite]:
    """Every implicit layer of ``model`` with what it acts on, in model
    order; names and targets are module paths in ``model``."""
    sites = [
        ImplicitSite(
            _join(path, site.name), site.implicit, site.role,
            _join(path, site.target), site.index)
        for path, owner in model.named_modules()
        if isinstance(owner, FoldableMixin) for site in owner.implicit_sites()
    ]
    order = {
        name: index
        for index, (name, _) in enumerate(model.named_modules())
    }
    return sorted(sites, key=lambda site: order[site.name])


def _join(*paths: str) -> str:
    return '.'.join(path for path in paths if path)


def implicit_layers(model: nn.Module) -> Dict[str, BaseImplicit]:
    """Every implicit layer of ``model`` by module path, in model order."""
    return {site.name: site.implicit for site in implicit_sites(model)}


def alignment_targets(model: nn.Module) -> List[str]:
    """The modules whose outputs feature alignment acts on (a neck or
    backbone, or the output convs of a neck), sorted."""
    return sorted({
        site.target
        for site in implicit_sites(model) if site.role == ALIGNMENT
    })


def refined_layers(model: nn.Module) -> Dict[str, PredictionRefinementMixin]:
    """The prediction layers refined by implicits, by module path, in model
    order."""
    return {
        path: module
        for path, module in model.named_modules()
        if isinstance(module, PredictionRefinementMixin)
    }


def refined_levels(layer: PredictionRefinementMixin) -> int:
    """How many levels a refined layer has implicit pairs for (1: one pair
    for every call)."""
    return len(layer.implicit_m)
