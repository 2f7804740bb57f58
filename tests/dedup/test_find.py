"""find_duplicates end to end: default configuration, evidence, streaming input, entities, bad input."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import pycrm.dedup
from pycrm import Contact, Customer, ValidationError
from pycrm.dedup import Cluster, Match, find_duplicates
from pycrm.dedup._find import run

from ._data import people


def pairs_of(clusters: list[Cluster]) -> set[tuple[Any, Any]]:
    return {tuple(sorted(p)) for c in clusters for p in itertools.combinations(c.ids, 2)}


def test_public_names_are_pinned() -> None:
    assert pycrm.dedup.__all__ == [
        "CONTACT_FIELDS",
        "CUSTOMER_FIELDS",
        "DEFAULT_THRESHOLD",
        "KINDS",
        "RULES",
        "Cluster",
        "Match",
        "MergeRecord",
        "Relink",
        "find_duplicates",
        "infer_fields",
        "merge_fields",
        "plan_merge",
    ]
    assert sorted(pycrm.dedup.KINDS) == sorted(["name", "text", "exact", "email", "phone", "date", "postcode", "address", "id"])


def test_default_configuration_finds_typoed_duplicates(people_1000: tuple[list[dict[str, Any]], set[Any]]) -> None:
    records, truth = people_1000
    found = pairs_of(find_duplicates(records))
    tp = len(found & truth)
    assert tp / len(found) >= 0.98, "precision"
    assert tp / len(truth) >= 0.95, "recall"


def test_every_match_says_why(people_1000: tuple[list[dict[str, Any]], set[Any]]) -> None:
    records, _ = people_1000
    clusters = find_duplicates(records)
    m = clusters[0].pairs[0]
    assert isinstance(m, Match) and 0.5 <= m.score <= 1
    assert set(m.field_scores) == {
        "given_name",
        "surname",
        "address",
        "suburb",
        "postcode",
        "state",
        "date_of_birth",
        "soc_sec_id",
    }
    for field, level in m.levels.items():
        if level == "exact":
            assert m.field_scores[field] >= 0, field
        elif level == "missing":
            assert m.field_scores[field] == 0, field
    # the evidence adds up to the score: more bits in total, higher probability
    by_bits = sorted((sum(p.field_scores.values()), p.score) for c in clusters for p in c.pairs)
    assert [s for _, s in by_bits] == sorted(s for _, s in by_bits)
    # a typo in a field is weaker evidence than the same field agreeing exactly
    pairs = [p for c in clusters for p in c.pairs]
    for field in ("given_name", "surname", "date_of_birth", "soc_sec_id"):
        exact = {p.field_scores[field] for p in pairs if p.levels[field] == "exact"}
        other = {p.field_scores[field] for p in pairs if p.levels[field] not in ("exact", "missing")}
        assert other and max(other) <= min(exact), field


def test_any_iterable_works_and_gives_the_same_answer() -> None:
    records, _ = people(400, seed=11)
    assert find_duplicates(iter(records)) == find_duplicates(list(records))
    assert find_duplicates(r for r in records) == find_duplicates(records)


def test_a_higher_threshold_links_a_subset() -> None:
    records, _ = people(600, seed=5)
    loose = pairs_of(find_duplicates(records, threshold=0.2))
    strict = pairs_of(find_duplicates(records, threshold=0.99))
    assert strict <= loose
    assert all(m.score >= 0.99 for c in find_duplicates(records, threshold=0.99) for m in c.pairs if len(c) == 2)


def test_customers_need_no_configuration() -> None:
    customers = [
        Customer("上海携程商务有限公司", phones=["+86 21 3406 4888"], id="a"),
        Customer("携程商务（上海）有限公司", phones=["+862134064888"], id="b"),
        Customer("Acme Co., Ltd.", emails=["sales@acme.com"], id="c"),
        Customer("ACME Limited", emails=["Sales@Acme.com", "x@acme.com"], id="d"),
        Customer("Globex", emails=["info@globex.com"], id="e"),
        Customer("华为技术有限公司", phones=["+86 755 2878 0808"], id="f"),
        Customer("中兴通讯股份有限公司", phones=["+86 755 2677 0000"], id="g"),
    ]
    assert [c.ids for c in find_duplicates(customers)] == [("a", "b"), ("c", "d")]


def test_contacts_with_first_and_last_name_swapped_match() -> None:
    contacts = [
        Contact("cust1", "Lei", "Li", emails=["li.lei@example.com"], id="1"),
        Contact("cust1", "Li", "Lei", emails=["li.lei@example.com"], id="2"),
        Contact("cust2", "Meimei", "Han", emails=["han@example.com"], id="3"),
    ]
    [cluster] = find_duplicates(contacts)
    assert cluster.ids == ("1", "2")
    assert cluster.pairs[0].levels["first_name"] == "exact"


def test_records_without_ids_are_named_by_position() -> None:
    rows = [
        {"name": "Acme Ltd", "email": "a@acme.com"},
        {"name": "Other", "email": "o@x.com"},
        {"name": "ACME", "email": "a@acme.com"},
    ]
    assert [c.ids for c in find_duplicates(rows)] == [(0, 2)]


def test_no_records_no_clusters() -> None:
    assert find_duplicates([]) == []
    assert find_duplicates([{"id": 1, "name": "alone"}]) == []


def test_a_repeated_id_is_refused_with_its_position() -> None:
    with pytest.raises(ValidationError) as info:
        find_duplicates([{"id": "x", "name": "a"}, {"id": "y", "name": "b"}, {"id": "x", "name": "c"}])
    assert info.value.fields == ["records[2].id"]


def test_an_unknown_kind_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        find_duplicates([{"id": 1, "tel": "1"}], fields={"tel": "telephone", "name": "name", "x": "bogus"})
    assert info.value.fields == ["fields.tel", "fields.x"]
    assert "telephone" in str(info.value)


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.1, "0.5", True])
def test_a_threshold_outside_0_1_is_refused(threshold: Any) -> None:
    with pytest.raises(ValidationError) as info:
        find_duplicates([{"id": 1, "name": "a"}], threshold=threshold)
    assert info.value.fields == ["threshold"]


def test_unrecognised_columns_ask_for_fields() -> None:
    with pytest.raises(ValidationError) as info:
        find_duplicates([{"id": 1, "colour": "red"}])
    assert "fields" in str(info.value)


def test_candidate_pairs_grow_about_linearly() -> None:
    small = run(people(2000, seed=1)[0]).blocking
    large = run(people(8000, seed=1)[0]).blocking
    per_record_small = len(small.a) / 2000
    per_record_large = len(large.a) / 8000
    assert per_record_large <= 2.5 * per_record_small
    assert len(large.a) < 8000 * 7999 / 2 / 100


def test_blocking_keeps_the_true_pairs() -> None:
    records, truth = people(3000, seed=2)
    result = run(records)
    ids = result.columns.ids
    candidates = {tuple(sorted((ids[a], ids[b]))) for a, b in zip(result.blocking.a.tolist(), result.blocking.b.tolist())}
    assert len(candidates & truth) / len(truth) >= 0.99
