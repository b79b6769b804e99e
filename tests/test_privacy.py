"""Keyed pseudonyms: privacy.pseudonymise (HMAC-SHA256), privacy.siphash24 and the simulator's phone ids."""

from __future__ import annotations

import hashlib
import hmac
import json

import numpy as np
import pandas as pd
import pytest

import privdomain
from privdomain.errors import UsageError
from privdomain.privacy import pseudonymise, siphash24
from privdomain.simulate import simulate
from privdomain.simulate.population import phone_hash, phone_key

KEY = b"0123456789abcdef-secret"
M64 = (1 << 64) - 1


# ------------------------------------------------------------ a plain SipHash-2-4, one byte string at a time
def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & M64


def _round(v0, v1, v2, v3):
    v0 = (v0 + v1) & M64
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & M64
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & M64
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & M64
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash_reference(key: bytes, msg: bytes) -> int:
    """SipHash-2-4 as the paper states it (any message length)."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    full = len(msg) // 8 * 8
    words = [int.from_bytes(msg[i:i + 8], "little") for i in range(0, full, 8)]
    words.append(int.from_bytes(msg[full:], "little") | ((len(msg) & 0xFF) << 56))
    for m in words:
        v[3] ^= m
        v = list(_round(*_round(*v)))
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        v = list(_round(*v))
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# the published vectors (key 00..0f, message 00..len-1), as little-endian 64-bit integers
@pytest.mark.parametrize("length, want", [(0, 0x726FDB47DD0E0E31), (8, 0x93F5F5799A932462),
                                          (15, 0xA129CA6149BE45E5)])
def test_the_reference_siphash_gives_the_published_vectors(length, want):
    assert siphash_reference(bytes(range(16)), bytes(range(length))) == want


def test_vectorised_siphash_equals_the_reference_on_random_values():
    rng = np.random.default_rng(5)
    values = rng.integers(0, 2**63, 300, dtype=np.int64)
    values[:3] = [0, 13800000000, 2**63 - 1]
    key = bytes(rng.integers(0, 256, 16, dtype=np.uint8))
    got = siphash24(values, key)
    want = [siphash_reference(key, int(v).to_bytes(8, "little")) for v in values]
    assert got.dtype == np.uint64 and got.tolist() == want


def test_siphash_needs_a_16_byte_key():
    with pytest.raises(UsageError, match="exactly 16 bytes"):
        siphash24(np.arange(3), b"short")


# ------------------------------------------------------------ pseudonymise
def test_pseudonymise_is_hmac_sha256_cut_to_32_hex_characters():
    df = pd.DataFrame({"phone": ["13800000000", "13900000001"], "n": [1, 2]})
    out = pseudonymise(df, ["phone"], KEY)
    want = [hmac.new(KEY, p.encode(), hashlib.sha256).hexdigest()[:32] for p in df["phone"]]
    assert out["phone"].tolist() == want and out["n"].tolist() == [1, 2]


def test_pseudonymise_of_a_long_key_follows_rfc_2104():
    key = b"k" * 100  # longer than a SHA-256 block: hashed first
    out = pseudonymise(pd.DataFrame({"a": ["x"]}), "a", key)
    assert out["a"][0] == hmac.new(key, b"x", hashlib.sha256).hexdigest()[:32]


def test_pseudonymise_keeps_nulls_null_and_the_same_value_the_same_pseudonym():
    df = pd.DataFrame({"openid": ["o1", None, "o2", "o1", np.nan], "phone": pd.array([1, None, 3, 1, 2], "Int64")})
    out = pseudonymise(df, ["openid", "phone"], KEY, prefix="id")
    assert out["openid"].isna().tolist() == [False, True, False, False, True]
    assert out["phone"].isna().tolist() == [False, True, False, False, False]
    assert out["openid"][0] == out["openid"][3] != out["openid"][2]
    assert out["phone"][0] == out["phone"][3] and out["phone"][0].startswith("id")
    # an integer and its text are one id
    assert out["phone"][0] == pseudonymise(pd.DataFrame({"p": ["1"]}), "p", KEY, prefix="id")["p"][0]


def test_pseudonymise_is_deterministic_and_depends_on_the_key():
    df = pd.DataFrame({"a": ["x", "y"]})
    a, b = pseudonymise(df, "a", KEY), pseudonymise(df, "a", KEY)
    c = pseudonymise(df, "a", KEY + b"!")
    assert a.equals(b) and not (a["a"] == c["a"]).any()


def test_pseudonymise_never_changes_its_input():
    df = pd.DataFrame({"a": ["x", "y", None], "b": [1, 2, 3]}, index=[7, 8, 9])
    before = df.copy(deep=True)
    out = pseudonymise(df, ["a"], KEY)
    pd.testing.assert_frame_equal(df, before)
    assert out.index.tolist() == [7, 8, 9] and out is not df


@pytest.mark.parametrize("key", [b"", b"fifteen bytes!!", "short text"])
def test_pseudonymise_refuses_a_key_shorter_than_16_bytes(key):
    with pytest.raises(UsageError, match=f"key: must be at least 16 bytes \\(got {len(key)}\\)"):
        pseudonymise(pd.DataFrame({"a": ["x"]}), "a", key)


def test_pseudonymise_names_an_unknown_column_with_a_suggestion():
    with pytest.raises(UsageError, match="unknown column 'phon'; did you mean 'phone'"):
        pseudonymise(pd.DataFrame({"phone": ["x"]}), ["phon"], KEY)


def test_pseudonymise_refuses_a_float_column():
    df = pd.DataFrame({"phone": [13800000000.0, np.nan]})
    with pytest.raises(UsageError, match="column 'phone' holds floats"):
        pseudonymise(df, "phone", KEY)


def test_pseudonymise_is_exported_as_privdomain_privacy():
    assert privdomain.privacy.pseudonymise is pseudonymise and "privacy" in dir(privdomain)


# ------------------------------------------------------------ the simulator's phone_hash ids
def _old_inverse(digest: int) -> int:
    """The inversion that worked on the old ids: undo splitmix64, then the public salt."""
    def unxorshift(x, s):
        y = x
        for _ in range(64 // s + 1):
            y = x ^ (y >> s)
        return y & M64
    x = unxorshift(digest, 31)
    x = (x * pow(0x94D049BB133111EB, -1, 1 << 64)) & M64
    x = unxorshift(x, 27)
    x = (x * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & M64
    x = unxorshift(x, 30)
    return x ^ 0x5EED_0F_F0E


def test_the_old_inversion_worked_on_the_old_unkeyed_ids():
    from privdomain.simulate.rng import mix

    phone = 13812345678
    old = int(mix(np.array([phone ^ 0x5EED_0F_F0E], np.uint64))[0])
    assert _old_inverse(old) == phone


@pytest.fixture(scope="module")
def tea(tmp_path_factory):
    return simulate("tea", persons=800, seed=4, out=tmp_path_factory.mktemp("tea") / "ds", truth=False)


def test_a_phone_hash_id_no_longer_inverts_to_the_phone(tea):
    ev = tea.read(columns=["person_id", "id_type", "id_value"])
    ph = ev[ev.id_type == "phone_hash"].drop_duplicates("person_id")
    phones = set(tea.read("persons")["phone"].dropna().astype(np.int64))
    assert len(ph) > 50
    recovered = {_old_inverse(int(v[2:])) for v in ph["id_value"].astype(str)}
    assert not recovered & phones


def test_the_same_phone_gets_the_same_id_so_identity_still_links(tea):
    ev = tea.read(columns=["person_id", "id_type", "id_value"])
    ph = ev[ev.id_type == "phone_hash"]
    assert (ph.groupby("person_id")["id_value"].nunique() == 1).all()  # one id per person and phone
    assert (ph.groupby("id_value", observed=True)["person_id"].nunique() == 1).all()
    persons = tea.read("persons").set_index("person_id")
    first = ph.drop_duplicates("person_id")
    want = phone_hash(persons.loc[first["person_id"], "phone"].tolist(), phone_key(4))
    assert list(want) == first["id_value"].astype(str).tolist()
    links = tea.read("id_links")
    linked = set(links.loc[links.id_type_b == "phone_hash", "id_value_b"])
    members = persons["phone"].dropna()
    assert linked and linked <= set(phone_hash(members.tolist(), phone_key(4)))  # links carry the same ids
    assert len(linked & set(ph["id_value"].astype(str))) > 20


def test_a_key_changes_the_phone_ids_and_the_manifest_says_where_it_came_from(tmp_path, monkeypatch):
    a = simulate("tea", persons=200, seed=4, out=tmp_path / "a", truth=False)
    b = simulate("tea", persons=200, seed=4, out=tmp_path / "b", truth=False, key="a key of 16+ bytes")
    monkeypatch.setenv("PRIVDOMAIN_KEY", "another key, from the environment")
    c = simulate("tea", persons=200, seed=4, out=tmp_path / "c", truth=False)
    ids = {}
    for name, ds in (("a", a), ("b", b), ("c", c)):
        ev = ds.read(columns=["id_type", "id_value"])
        ids[name] = ev.loc[ev.id_type == "phone_hash", "id_value"].astype(str).tolist()
        others = ev.loc[ev.id_type != "phone_hash", "id_value"].astype(str).tolist()
        ids[name + "_others"] = others
    assert ids["a"] and len(ids["a"]) == len(ids["b"]) == len(ids["c"])
    assert not set(ids["a"]) & set(ids["b"]) and not set(ids["b"]) & set(ids["c"])
    assert ids["a_others"] == ids["b_others"] == ids["c_others"]  # only phone ids depend on the key
    sources = [json.loads((ds.path / "dataset.json").read_text())["phone_hash_key"] for ds in (a, b, c)]
    assert sources == ["seed", "argument", "PRIVDOMAIN_KEY"]
    text = (c.path / "dataset.json").read_text()
    assert "another key" not in text and "16+ bytes" not in (b.path / "dataset.json").read_text()


def test_same_seed_and_key_give_the_same_bytes(tmp_path):
    a = simulate("tea", persons=150, seed=9, out=tmp_path / "a", truth=False, key=b"k" * 16)
    b = simulate("tea", persons=150, seed=9, out=tmp_path / "b", truth=False, key=b"k" * 16)
    files = sorted(p.relative_to(a.path) for p in a.path.rglob("*.parquet"))
    assert files and all((a.path / f).read_bytes() == (b.path / f).read_bytes() for f in files)


def test_a_short_environment_key_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIVDOMAIN_KEY", "short")
    with pytest.raises(UsageError, match="PRIVDOMAIN_KEY: must be at least 16 bytes"):
        simulate("tea", persons=20, out=tmp_path / "x", truth=False)
    assert list(tmp_path.iterdir()) == []
