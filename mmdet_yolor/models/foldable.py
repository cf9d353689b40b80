# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What the modules that own implicit layers implement.

A neck's or backbone's feature alignment, a neck's output convs and the
refined prediction layers each own their implicits
(:class:`FoldableMixin`): they fold them (as mmyolo's re-parameterisable
modules own ``switch_to_deploy``; the rules are pure functions of tensors
in :mod:`.layers.folding`) and say what they act on
(:class:`ImplicitSite`). ``mmdet_yolor.deploy`` and
:mod:`.introspection` walk a model and ask them.
"""
from dataclasses import dataclass
from typing import List, Optional

from torch import nn

from .wrapping import YOLORMixin


@dataclass
class FoldSite:
    """What folding did with one implicit layer.

    Attributes:
        name (str): Module path of the implicit layer.
        folded (bool): Whether its value now lives in a neighbouring layer.
        how (str): The rule that folded it, or why it was kept.
    """
    name: str
    folded: bool
    how: str


# What an implicit layer does (ImplicitSite.role).
ALIGNMENT, INPUT, OUTPUT = 'alignment', 'input', 'output'


@dataclass(frozen=True)
class ImplicitSite:
    """One implicit layer of a model and what it acts on.

    Attributes:
        name (str): Module path of the implicit layer.
        implicit (nn.Module): The implicit layer.
        role (str): ``'alignment'`` (feature alignment of an output of
            ``target``), ``'input'`` or ``'output'`` (prediction
            refinement of the input or output of the layer ``target``).
        target (str): Module path of what it acts on: a neck or backbone,
            an output conv of a neck, a prediction layer.
        index (int, optional): Which of ``target``'s outputs it aligns, or
            the level of a prediction layer's implicit pair (0 for a layer
            with one pair); None for the only output of an output conv.
    """
    name: str
    implicit: nn.Module
    role: str
    target: str
    index: Optional[int]


class FoldableMixin(YOLORMixin):
    """A YOLOR module that owns implicit layers: it folds them and says
    what they act on."""

    def implicit_sites(self) -> List[ImplicitSite]:
        """The implicit layers this module owns, names and targets
        relative to it (``''``: the module itself)."""
        raise NotImplementedError

    def fold_implicit(self) -> List[FoldSite]:
        """Fold every implicit layer this module owns whose folding is
        exact into its neighbouring layer and mark it folded (it computes
        the identity from then on); leave the others. Implicits folded
        before are skipped, so folding twice changes nothing.

        Returns:
            list[FoldSite]: One per implicit not folded before, named
            relative to this module.
        """
        raise NotImplementedError

    def strip_folded_implicit(self) -> None:
        """Remove the implicit layers marked folded, and with them their
        runtime operations."""
        raise NotImplementedError
