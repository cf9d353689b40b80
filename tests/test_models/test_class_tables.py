# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Tables keyed by class, read along the class hierarchy."""
from mmdet.models.necks import FPN, PAFPN

from mmdet_yolor.models.class_tables import lookup_by_class


class Base:
    pass


class Child(Base):
    pass


class GrandChild(Child):
    pass


class Other:
    pass


class Both(Other, Child):
    pass


def test_an_entry_serves_the_subclasses_of_its_class():
    table = {Base: 'base'}
    assert lookup_by_class(table, Base) == 'base'
    assert lookup_by_class(table, GrandChild) == 'base'
    # as for mmdet's necks: PAFPN is an FPN
    assert lookup_by_class({FPN: 'fpn_convs'}, PAFPN) == 'fpn_convs'


def test_a_subclass_entry_overrides_its_base():
    table = {Base: 'base', Child: 'child'}
    assert lookup_by_class(table, GrandChild) == 'child'
    assert lookup_by_class(table, Child) == 'child'
    assert lookup_by_class(table, Base) == 'base'


def test_the_nearest_base_follows_the_method_resolution_order():
    assert lookup_by_class({Base: 'base', Other: 'other'}, Both) == 'other'
    assert lookup_by_class({Base: 'base'}, Both) == 'base'


def test_a_class_without_a_listed_base_has_no_entry():
    assert lookup_by_class({Child: 'child'}, Base) is None
    assert lookup_by_class({Child: 'child'}, Other) is None
    assert lookup_by_class({}, Child) is None


def test_a_falsy_entry_is_returned_not_skipped():
    assert lookup_by_class({Base: ''}, Child) == ''
