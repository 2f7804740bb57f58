"""The audit chain: every kind of tampering is found and named by the first entry that does not fit."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycrm.errors import ValidationError
from pycrm.security import (
    CHANGED,
    GENESIS_HASH,
    AuditEntry,
    VerifyResult,
    canonical_json,
    chain_hash,
    diff,
    make_entry,
    verify,
)

AT = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
KEY = b"audit key held by the verifier only"


def trail(n: int = 5, *, key: bytes | None = None) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    for i in range(n):
        out.append(
            make_entry(
                out[-1] if out else None,
                at=AT + dt.timedelta(minutes=i),
                actor_id="u1",
                action="update" if i else "create",
                entity="customers",
                entity_id="c1",
                diff={"name": [f"v{i}", f"v{i + 1}"]},
                key=key,
            )
        )
    return out


def forge(prev: AuditEntry | None, seq: int, *, key: bytes | None = None, **fields: object) -> AuditEntry:
    """What an attacker with write access to the table would insert, hash recomputed without the key."""
    content = {
        "seq": seq,
        "at": AT.isoformat(),
        "actor_id": "mallory",
        "action": "update",
        "entity": "customers",
        "entity_id": "c1",
        "diff": {"status": ["lead", "active"]},
        **fields,
    }
    prev_hash = prev.hash if prev else GENESIS_HASH
    digest = chain_hash(prev_hash, content, key=key)
    return AuditEntry(seq, AT, "mallory", "update", "customers", "c1", content["diff"], prev_hash, digest)  # type: ignore[arg-type]


def test_an_intact_trail_verifies() -> None:
    t = trail()
    assert verify(t) == VerifyResult(True)
    assert verify([]) == VerifyResult(True)
    assert [e.seq for e in t] == [1, 2, 3, 4, 5]
    assert t[0].prev_hash == GENESIS_HASH and all(b.prev_hash == a.hash for a, b in itertools.pairwise(t))


def test_the_hash_is_sha256_over_canonical_json() -> None:
    e = trail(1)[0]
    expected = json.dumps(
        {**e.content(), "prev_hash": e.prev_hash}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert canonical_json({**e.content(), "prev_hash": e.prev_hash}) == expected
    assert e.hash == hashlib.sha256(expected).hexdigest()


def test_canonical_json_keeps_unicode_and_refuses_non_json() -> None:
    assert canonical_json({"name": "李雷"}) == '{"name":"李雷"}'.encode()
    with pytest.raises(ValidationError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ValidationError):
        make_entry(None, at=AT, actor_id=None, action="create", entity="customers", entity_id="c1", diff={"x": {1, 2}})


@pytest.mark.parametrize(
    "change",
    [
        {"diff": {"name": ["v2", "Evil"]}},
        {"actor_id": "mallory"},
        {"action": "delete"},
        {"entity_id": "c2"},
        {"at": AT + dt.timedelta(days=1)},
    ],
)
def test_an_edited_entry_is_found(change: dict[str, object]) -> None:
    t = trail()
    t[2] = attrs.evolve(t[2], **change)
    result = verify(t)
    assert not result.ok and result.first_bad_seq == 3
    assert "altered" in result.reason or "unknown action" in result.reason


def test_an_edited_entry_with_its_hash_recomputed_breaks_the_next_link() -> None:
    t = trail()
    t[2] = forge(t[1], 3)
    result = verify(t)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "does not follow" in result.reason


def test_a_deleted_entry_is_found() -> None:
    t = trail()
    del t[2]
    result = verify(t)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.reason == "entry 3 is missing (the next one is 4)"


def test_a_deleted_entry_with_later_seqs_renumbered_is_found() -> None:
    t = trail()
    del t[2]
    t[2:] = [attrs.evolve(e, seq=e.seq - 1) for e in t[2:]]
    result = verify(t)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_an_inserted_entry_is_found() -> None:
    t = trail()
    t.insert(2, forge(t[1], 3))  # a well-formed entry 3 pushed in before the real one
    result = verify(t)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "out of place" in result.reason


def test_a_repeated_seq_is_found() -> None:
    t = trail()
    t.insert(3, t[2])
    assert verify(t).first_bad_seq == 3


def test_swapped_entries_are_found() -> None:
    t = trail()
    t[1], t[2] = t[2], t[1]
    assert verify(t).first_bad_seq == 2


def test_an_appended_forgery_passes_a_plain_chain_but_not_a_keyed_one() -> None:
    """The trade-off of the key, shown: without it, anyone who can write the table can extend the chain."""
    plain = trail()
    assert verify([*plain, forge(plain[-1], 6)]).ok
    keyed = trail(key=KEY)
    assert verify(keyed, key=KEY).ok
    result = verify([*keyed, forge(keyed[-1], 6)], key=KEY)
    assert (result.ok, result.first_bad_seq) == (False, 6)
    assert not verify(keyed).ok  # verified without the key: nothing matches


def test_a_whole_rewritten_keyed_trail_fails() -> None:
    forged: list[AuditEntry] = []
    for seq in range(1, 4):
        forged.append(forge(forged[-1] if forged else None, seq))
    assert verify(forged).ok
    assert verify(forged, key=KEY).first_bad_seq == 1


def test_entries_cut_off_the_end_are_found_with_an_anchor() -> None:
    t = trail()
    head = (t[-1].seq, t[-1].hash)
    assert verify(t[:3]).ok  # a chain alone cannot tell
    result = verify(t[:3], head=head)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert verify(t, head=head).ok
    assert verify(t, head=(3, t[2].hash)).ok
    assert not verify(t, head=(3, "f" * 64)).ok


def test_a_slice_verifies_from_a_known_start() -> None:
    t = trail()
    assert verify(t[2:], start=(3, t[1].hash)).ok
    assert not verify(t[2:]).ok


def test_make_entry_checks_action_and_time() -> None:
    with pytest.raises(ValidationError) as info:
        make_entry(None, at=dt.datetime(2024, 1, 1), actor_id=None, action="read", entity="customers", entity_id=None, diff={})
    assert info.value.fields == ["action", "at"]
    e = make_entry(
        None, at=dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))), actor_id=None,
        action="permission_denied", entity="customers", entity_id=None, diff={},
    )  # fmt: skip
    assert e.at == dt.datetime(2024, 1, 1, 0, tzinfo=dt.UTC)


def test_entries_round_trip_through_data() -> None:
    t = trail()
    again = [AuditEntry.from_data(json.loads(json.dumps(e.to_data()))) for e in t]
    assert again == t and verify(again).ok
    with pytest.raises(ValidationError):
        AuditEntry.from_data({"seq": 1})


# ---------------------------------------------------------------- diffs


def test_diff_shows_old_and_new_per_changed_field() -> None:
    before = {"name": "Acme", "status": "lead", "tags": ["vip"], "version": 1, "updated_at": "2024-01-01T00:00:00+00:00"}
    after = {"name": "Acme", "status": "active", "tags": [], "version": 2, "updated_at": "2024-02-01T00:00:00+00:00"}
    assert diff(before, after) == {"status": ["lead", "active"], "tags": [["vip"], []]}
    assert diff(before, after, ignore=()) == {
        "status": ["lead", "active"],
        "tags": [["vip"], []],
        "updated_at": ["2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"],
        "version": [1, 2],
    }


def test_diff_of_a_creation_and_a_deletion() -> None:
    assert diff(None, {"name": "Acme", "id": "c1"}) == {"id": [None, "c1"], "name": [None, "Acme"]}
    assert diff({"name": "Acme"}, None) == {"name": ["Acme", None]}


def test_a_sensitive_field_shows_only_that_it_changed() -> None:
    d = diff({"national_id": "enc:v1:k1:AAA"}, {"national_id": "enc:v1:k1:BBB"}, ["national_id"])
    assert d == {"national_id": CHANGED}
    assert diff({"national_id": "enc:v1:k1:AAA"}, {"national_id": "enc:v1:k1:AAA"}, ["national_id"]) == {}


def test_a_type_change_is_a_change() -> None:
    assert diff({"n": 1}, {"n": True}) == {"n": [1, True]}


@given(st.dictionaries(st.sampled_from("abcde"), st.integers(0, 3)), st.dictionaries(st.sampled_from("abcde"), st.integers(0, 3)))
def test_applying_a_diff_gives_the_after_state(before: dict[str, int], after: dict[str, int]) -> None:
    d = diff(before, after, ignore=())
    rebuilt = {**before, **{k: new for k, (_, new) in d.items()}}
    assert {k: v for k, v in rebuilt.items() if v is not None} == after


def test_the_writers_fast_path_hashes_exactly_like_make_entry() -> None:
    """Stores build entries with ``make_entry_text`` (the diff encoded once, the content assembled by hand);
    ``verify`` re-hashes them with ``chain_hash`` over ``canonical_json``: both encodings must give the same
    hash, keyed or not, for awkward text."""
    from pycrm.security._audit import make_entry_text

    at = dt.datetime(2024, 5, 1, 9, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    diffs = [{}, {"name": [None, '李雷 "x" \\ \u2028 😀'], "amount": ["1.50", "2"], "tags": [[], ["b", "a"]]}, {"n": [1, None]}]
    prev = None
    for key in (None, b"k" * 32):
        for d in diffs:
            slow = make_entry(prev, at=at, actor_id="u1", action="update", entity="customers", entity_id="c1", diff=d, key=key)
            fast, text = make_entry_text(
                0 if prev is None else prev.seq,
                GENESIS_HASH if prev is None else prev.hash,
                at=at,
                actor_id="u1",
                action="update",
                entity="customers",
                entity_id="c1",
                diff=d,
                key=key,
            )
            assert fast == slow
            assert fast.hash == chain_hash(fast.prev_hash, fast.content(), key=key)
            assert json.loads(text) == d
            assert text.encode() == canonical_json(d)
            prev = slow


@given(st.data())
def test_a_created_rows_diff_text_is_the_canonical_encoding_of_its_diff(data: st.DataObject) -> None:
    """``created_diff_text`` writes each field's JSON directly; it must equal the canonical encoding of the
    diff built from ``to_data``, byte for byte, or verify would reject the entries of an import."""
    from pycrm.domain import Address
    from pycrm.domain._codec import to_data
    from pycrm.security._audit import created_diff, created_diff_text, diff_text
    from tests import strategies as s

    addresses = st.lists(
        st.builds(
            Address,
            street=st.none() | s.storable_texts,
            city=st.none() | s.storable_texts,
            postcode=st.none() | st.text("0123456789", min_size=1, max_size=6),
            country=st.sampled_from([None, "CN", "us"]),
        ),
        max_size=2,
    )
    keys = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=8)
    flat_custom = st.dictionaries(keys, s.storable_texts, max_size=3)  # keys pycrm stores (no NUL, no surrogate)
    entity = data.draw(
        st.one_of(
            s.customers(),
            s.customers(addresses=data.draw(addresses), custom=data.draw(flat_custom)),
            s.contacts("c1"),
            s.orders("c1"),
            s.opportunities("c1"),
            s.tickets("c1"),
        )
    )
    object.__setattr__(entity, "id", data.draw(st.one_of(st.none(), st.text(min_size=1, max_size=8))))
    expected = diff_text(created_diff(to_data(entity)))
    assert created_diff_text(entity) == expected
    assert json.loads(expected) == created_diff(to_data(entity))


@given(st.data())
def test_created_diff_texts_of_a_batch_are_each_rows_canonical_diff(data: st.DataObject) -> None:
    """``created_diff_texts`` (add_many's and an import's one pass) gives, for a batch of several kinds and
    time stamps shared or not, each row's canonical diff: what ``created_diff_text`` gives it alone."""
    from pycrm.domain._codec import to_data
    from pycrm.security._audit import created_diff, created_diff_text, created_diff_texts, diff_text
    from pycrm.storage._repository import stamp_new
    from tests import strategies as s

    made = data.draw(st.lists(st.one_of(s.customers(), s.contacts("c1"), s.orders("c1")), max_size=6))
    times = [AT, AT + dt.timedelta(microseconds=1)]
    for e in made:
        stamp_new(e, times[data.draw(st.integers(0, 1))])
    expected = [diff_text(created_diff(to_data(e))) for e in made]
    assert created_diff_texts(made) == expected
    assert [created_diff_text(e) for e in made] == expected


def test_created_diff_text_writes_each_entitys_own_time() -> None:
    """The text of the last time stamp is reused for the same datetime object (the rows of one write share
    it); other objects, equal or not, are written anew."""
    from pycrm.domain import Customer
    from pycrm.domain._codec import to_data
    from pycrm.security._audit import created_diff, created_diff_text, diff_text

    at = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
    later = dt.datetime(2024, 5, 1, 9, 0, 0, 1, tzinfo=dt.UTC)
    same = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
    made = [Customer(f"c{i}", id=f"c{i}", version=1, created_at=t, updated_at=t) for i, t in enumerate([at, at, later, at, same])]
    texts = [created_diff_text(c) for c in made]
    assert texts == [diff_text(created_diff(to_data(c))) for c in made]
    assert [json.loads(t)["created_at"][1] for t in texts] == [
        "2024-05-01T09:00:00+00:00",
        "2024-05-01T09:00:00+00:00",
        "2024-05-01T09:00:00.000001+00:00",
        "2024-05-01T09:00:00+00:00",
        "2024-05-01T09:00:00+00:00",
    ]


def test_chained_rows_hash_like_entries_whether_the_diff_comes_as_data_or_as_text() -> None:
    from pycrm.security._audit import diff_text
    from pycrm.storage._journal import chain, chain_rows

    at = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
    drafts = [
        {
            "at": at,
            "actor_id": None,
            "action": "create",
            "entity": "customers",
            "entity_id": "c1",
            "diff": {"name": [None, "李雷"]},
        },
        {"at": at, "actor_id": "u1", "action": "update", "entity": "customers", "entity_id": None, "diff": {}},
    ]
    as_text = [{**d, "diff": None, "diff_text": diff_text(d["diff"])} for d in drafts]
    for key in (None, b"k" * 32):
        entries = chain(0, GENESIS_HASH, drafts, key)
        assert verify(entries, key=key)
        assert [(e.seq, e.prev_hash, e.hash) for e in entries] == [
            (seq, prev, digest) for seq, _, prev, digest, _ in chain_rows(0, GENESIS_HASH, as_text, key)
        ]
        assert chain(0, GENESIS_HASH, as_text, key) == entries
    with pytest.raises(ValidationError, match="action"):
        chain_rows(0, GENESIS_HASH, [{**drafts[0], "action": "nope"}], None)


_names = st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["u1", "c1", '引号"\\', "\u2028"]))


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # which of three times: entries of one write share theirs
            _names,
            st.sampled_from(["create", "update", "delete", "merge"]),
            st.sampled_from(["customers", "orders", "客户"]),
            _names,
            st.dictionaries(st.text(max_size=4), st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=2), max_size=2),
        ),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([None, KEY]),
)
def test_chained_rows_hash_as_verify_recomputes_them(items: list[tuple], key: bytes | None) -> None:
    """chain_rows encodes the parts entries share once; every hash is still the one verify recomputes from
    the entry's canonical JSON (times, actors, actions and entities changing from entry to entry)."""
    from pycrm.storage._journal import chain_rows

    times = [AT, AT + dt.timedelta(seconds=1), dt.datetime(2024, 5, 1, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))]
    drafts = [
        {"at": times[t], "actor_id": actor, "action": action, "entity": entity, "entity_id": eid, "diff": d}
        for t, actor, action, entity, eid, d in items
    ]
    rows = chain_rows(3, "f" * 64, drafts, key)
    entries = [
        AuditEntry(
            seq, d["at"].astimezone(dt.UTC), d["actor_id"], d["action"], d["entity"], d["entity_id"], d["diff"], prev, h, dd
        )
        for d, (seq, _, prev, h, dd) in zip(drafts, rows)
    ]
    assert [e.seq for e in entries] == list(range(4, 4 + len(drafts)))
    assert verify(entries, key=key, start=(4, "f" * 64)).ok
