# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What the modules owning implicit layers implement: the record of an
implicit's site, and the interface a new owner must fill."""
import dataclasses
import pickle

import pytest
from torch import nn

from mmdet_yolor.models.foldable import ALIGNMENT, FoldableMixin, ImplicitSite
from mmdet_yolor.models.layers import ImplicitA
from mmdet_yolor.models.wrapping import mix_into


def test_an_implicit_site_is_immutable():
    site = ImplicitSite('implicit_alignment.0', ImplicitA(4), ALIGNMENT, '', 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.name = 'other'


@pytest.mark.parametrize(
    'method', ['implicit_sites', 'fold_implicit', 'strip_folded_implicit'])
def test_an_owner_must_implement_every_method(method):
    module = mix_into(nn.Conv2d(2, 2, 1), FoldableMixin)
    with pytest.raises(NotImplementedError):
        getattr(module, method)()


def test_an_owner_pickles_as_its_mixed_type():
    # FoldableMixin is a YOLORMixin: generated classes rebuild on unpickling
    module = pickle.loads(
        pickle.dumps(mix_into(nn.Conv2d(2, 2, 1), FoldableMixin)))
    assert isinstance(module, FoldableMixin) and isinstance(module, nn.Conv2d)
