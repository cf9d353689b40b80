# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fold implicit knowledge into neighbouring layers for inference.

``g(z)`` does not depend on the input, so after training it is a constant
that the layer next to it can absorb (paper section 4.4). Every YOLOR module
that owns implicit layers knows how to fold them
(:class:`~mmdet_yolor.models.foldable.FoldableMixin`: the neck and backbone
alignment, FPN output convs, refined prediction layers; the rules are in
:mod:`mmdet_yolor.models.layers.folding`, FPN's in
:mod:`mmdet_yolor.models.necks.fpn_folding`). This module walks a model, asks
each owner to fold, and reports what was folded and what was kept.

The words: to *fold* an implicit is to move its value into a neighbouring
layer and leave it computing the identity (:func:`fold_implicit`, which
reports a :class:`FoldReport`); to *strip* is to remove the folded ones
with their runtime operations (:func:`strip_folded`); to *fuse* a model is
both (:func:`fold_and_strip`, which :func:`fuse_implicit` logs, and
``tools/deploy/fuse_implicit.py``). Kept:

- kept: per-level implicits on a layer shared by every pyramid level, an add
  before a padded kxk conv, neck levels whose output the neck reuses to
  derive the next level, outputs of necks or backbones without a folding
  rule.
"""
from dataclasses import dataclass
from typing import List

from mmengine.config import Config
from mmengine.logging import print_log
from torch import nn

from ..models.foldable import FoldableMixin, FoldSite
from ..toggle import unyolorize


@dataclass
class FoldReport:
    """The :class:`FoldSite` of every implicit layer folded or kept."""
    sites: List[FoldSite]

    @property
    def complete(self) -> bool:
        """Whether every implicit was folded (the model is then a plain mmdet
        model with different weights)."""
        return all(site.folded for site in self.sites)

    def config_for(self, cfg: Config) -> Config:
        """The config the folded and stripped model of ``cfg`` loads into:
        the plain mmdet config of the detector (``unyolorize(cfg)``) when
        every implicit folded, else ``cfg``."""
        return unyolorize(cfg) if self.complete else cfg

    def format(self) -> str:
        """A summary line and one line per implicit."""
        folded = sum(site.folded for site in self.sites)
        lines = [f'folded {folded} of {len(self.sites)} implicit layers']
        for site in self.sites:
            state = 'folded' if site.folded else 'kept  '
            lines.append(f'  {state} {site.name}: {site.how}')
        return '\n'.join(lines)


def fold_implicit(model: nn.Module) -> FoldReport:
    """Fold every implicit layer of ``model`` whose folding is exact into
    its neighbouring layer and make it the identity (add 0, multiply 1), in
    place. The model computes the same outputs as before (up to float
    rounding); the folded implicits still run until :func:`strip_folded`.
    Implicits folded before are not folded again nor reported.
    """
    sites = []
    for name, module in model.named_modules():
        if isinstance(module, FoldableMixin):
            prefix = f'{name}.' if name else ''
            sites += [
                FoldSite(prefix + site.name, site.folded, site.how)
                for site in module.fold_implicit()
            ]
    return FoldReport(sites)


def strip_folded(model: nn.Module) -> None:
    """Remove the implicit layers that :func:`fold_implicit` folded, with
    their runtime operations: a refined layer or output conv left without
    implicits is of its plain mmdet type again, a folded neck level is an
    ``nn.Identity``."""
    for module in list(model.modules()):
        if isinstance(module, FoldableMixin):
            module.strip_folded_implicit()


def fold_and_strip(model: nn.Module, strip_partial: bool = True) -> FoldReport:
    """Fold every implicit of ``model`` that folds exactly and strip the
    folded ones, in place; return the report. The one preparation of a model
    for inference, used by :func:`fuse_implicit`, ``fuse_checkpoint``, the
    ONNX export and the zoo sweep.

    Args:
        model (nn.Module): A model with YOLOR implicits (or without: then
            nothing happens and the report is empty).
        strip_partial (bool): Strip even when some implicits were kept.
            ``False`` for a model saved for its YOLOR config, which must
            keep every key: its folded implicits stay, at identity.
            Defaults to True.
    """
    report = fold_implicit(model)
    if strip_partial or report.complete:
        strip_folded(model)
    return report


def fuse_implicit(model: nn.Module, logger: str = 'current') -> nn.Module:
    """Fold implicit knowledge into the neighbouring layers of ``model`` for
    inference, in place, and log what was folded and what was kept. Calling
    it again changes nothing.

    Returns:
        nn.Module: ``model``, computing the same outputs (within float
        rounding) without the runtime operations of the folded implicits.
    """
    print_log(fold_and_strip(model).format(), logger=logger)
    return model
