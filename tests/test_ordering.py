from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from core.ordering import OrderingError, resolve_order


@dataclass(frozen=True)
class Item:
    name: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()


def names(items: list[Item]) -> list[str]:
    return [item.name for item in resolve_order(items).order]


def test_before_and_after_both_order() -> None:
    items = [Item("timing", after=("workspace",)), Item("workspace", after=("security",)), Item("security")]
    assert names(items) == ["security", "workspace", "timing"]
    assert names([Item("a", before=("b",)), Item("b")]) == ["a", "b"]
    assert names([Item("b", before=("a",)), Item("a")]) == ["b", "a"]


def test_result_does_not_depend_on_load_order() -> None:
    items = [Item("c"), Item("a", after=("d",)), Item("b"), Item("d", before=("c",)), Item("e", after=("b",))]
    results = {tuple(names(list(permutation))) for permutation in itertools.permutations(items)}
    assert results == {("b", "d", "a", "c", "e")}


def test_ties_are_broken_by_name() -> None:
    assert names([Item("zeta"), Item("alpha"), Item("mid")]) == ["alpha", "mid", "zeta"]


def test_soft_hint_to_absent_item_is_ignored_and_reported() -> None:
    resolution = resolve_order([Item("a", after=("missing",)), Item("b", before=("ghost",))])
    assert [i.name for i in resolution.order] == ["a", "b"]
    assert [str(h) for h in resolution.ignored] == ["a after=missing", "b before=ghost"]
    assert any("ignored: a after=missing" in line for line in resolution.explain())


def test_requires_is_hard() -> None:
    with pytest.raises(OrderingError, match="'gateway' requires 'security'"):
        resolve_order([Item("gateway", requires=("security",))], kind="middleware")
    assert names([Item("gateway", requires=("security",)), Item("security")]) == ["gateway", "security"]


def test_cycle_is_reported_with_the_hints_that_made_it() -> None:
    items = [
        Item("a", before=("b",)),
        Item("b", before=("c",)),
        Item("c", after=("x",)),
        Item("x", after=("c",)),
        Item("z"),
    ]
    with pytest.raises(OrderingError) as raised:
        resolve_order(items, kind="middleware")
    message = str(raised.value)
    assert "middleware order has a cycle: c -> x -> c" in message
    assert "c after=x" in message and "x after=c" in message


def test_three_cycle_downstream_node_does_not_hide_the_cycle() -> None:
    items = [Item("a", before=("b",)), Item("b", before=("c",)), Item("c", before=("a", "d")), Item("d")]
    with pytest.raises(
        OrderingError, match=r"cycle: a -> b -> c -> a \(made by the hints: a before=b; b before=c; c before=a\)"
    ):
        resolve_order(items)


def test_duplicate_names_are_an_error() -> None:
    with pytest.raises(OrderingError, match="two routers are named 'x'"):
        resolve_order([Item("x"), Item("x")], kind="router")


def test_explain_names_the_hints_that_placed_each_item() -> None:
    resolution = resolve_order([Item("workspace", after=("security",)), Item("security"), Item("lonely")])
    lines = resolution.explain({"workspace": "plugin ws"})
    assert lines[0].endswith("lonely  (no hints: placed by name)")
    assert "security  (workspace after=security)" in lines[1]
    assert "workspace [plugin ws]  (workspace after=security)" in lines[2]
