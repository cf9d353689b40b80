# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Probes that record, while a variant trains, which implicits are called
and which outputs and parameters a gradient reaches."""
from collections import Counter
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ...models import alignment_targets, implicit_sites, refined_layers
from ...models.introspection import refined_levels


def implicit_targets(model: nn.Module) -> Dict[str, Optional[int]]:
    """The modules of ``model`` whose outputs its implicits act on, with
    their number of per-level calls (None for a module whose outputs are
    indexed as a sequence: a neck or backbone under feature alignment, or
    an output conv)."""
    targets: Dict[str, Optional[int]] = {
        target: None
        for target in alignment_targets(model)
    }
    targets.update({
        path: refined_levels(layer)
        for path, layer in refined_layers(model).items()
    })
    return targets


class OutputProbe:
    """Record which outputs of some modules of a model a gradient reaches
    while it trains: in the baseline, the outputs that the YOLOR model's
    implicits act on.

    An implicit whose output no gradient reaches in the baseline either
    gets none in the YOLOR model, without fault of the plugin: a pyramid
    level where these inputs have no positive sample of a loss that only
    reads positives, a level the heads do not read.

    Args:
        model (nn.Module): The baseline.
        targets (dict[str, int | None]): :func:`implicit_targets` of the
            YOLOR model.
    """

    def __init__(self, model: nn.Module, targets: Dict[str,
                                                       Optional[int]]) -> None:
        self.watched = set()
        self.reached = set()
        self._calls = Counter()
        self._handles = []
        modules = dict(model.named_modules())
        for path, levels in targets.items():
            if path in modules:
                self._handles.append(modules[path].register_forward_hook(
                    partial(self._record, path, levels)))

    def _record(self, path: str, levels: Optional[int], module: nn.Module,
                inputs: tuple, output) -> None:
        if levels is None:
            if isinstance(output, (tuple, list)):
                for index, item in enumerate(output):
                    self._watch(item, (path, index))
            else:
                self._watch(output, (path, None))
        else:
            self._watch(output, (path, self._calls[path] % levels))
            self._calls[path] += 1

    def _watch(self, tensor, key: Tuple[str, Optional[int]]) -> None:
        if torch.is_tensor(tensor) and tensor.requires_grad:
            self.watched.add(key)
            tensor.register_hook(lambda grad: self.reached.add(key))

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()

    def unreached(self, target: Tuple[str, Optional[int]]) -> bool:
        """Whether the output ``target`` (``(module path, index)`` of an
        :class:`~mmdet_yolor.models.ImplicitSite`) took part in the loss's
        graph and no gradient reached it."""
        path, index = target
        keys = [(path, index)] if index is not None else [
            key for key in self.watched if key[0] == path
        ]
        return bool(keys) and all(
            key in self.watched and key not in self.reached for key in keys)


class ImplicitProbe:
    """Record which implicit layers of a model are called, and which of their
    trainable parameters a gradient reaches (and is non-zero), while it
    trains.

    Args:
        model (nn.Module): The YOLOR model.
    """

    def __init__(self, model: nn.Module) -> None:
        sites = implicit_sites(model)
        self.layers = {site.name: site.implicit for site in sites}
        # what each implicit acts on: (module path, output or level)
        self.targets = {site.name: (site.target, site.index) for site in sites}
        self.calls = Counter()
        self.trainable: Dict[str, str] = {}  # parameter -> implicit layer
        self.reached = set()
        self.nonzero = set()
        self._handles = []
        for name, layer in self.layers.items():
            self._handles.append(
                layer.register_forward_hook(
                    lambda *_, name=name: self.calls.update([name])))
            for key, param in layer.named_parameters():
                if param.requires_grad:
                    self.trainable[f'{name}.{key}'] = name
                    self._handles.append(
                        param.register_hook(
                            partial(self._grad, f'{name}.{key}')))

    def _grad(self, key: str, grad: torch.Tensor) -> None:
        self.reached.add(key)
        if bool(grad.abs().sum() > 0):
            self.nonzero.add(key)

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()

    def uncalled(self) -> List[str]:
        """Implicit layers never called."""
        return [name for name in self.layers if not self.calls[name]]

    def excused(self, key: str, baseline: Optional[OutputProbe]) -> bool:
        """Whether no gradient reached the output that the parameter
        ``key`` acts on in the ``baseline`` either."""
        return baseline is not None and baseline.unreached(
            self.targets[self.trainable[key]])

    def unreached(self) -> List[str]:
        """Trainable parameters no gradient reached."""
        return sorted(set(self.trainable) - self.reached)

    def zero_gradients(self) -> List[str]:
        """Parameters whose gradients were all zero: in the graph, but the
        loss did not depend on them in these steps (a pyramid level without
        positive samples, a loss still warming up)."""
        return sorted(self.reached - self.nonzero)
