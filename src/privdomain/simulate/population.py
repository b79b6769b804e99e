"""Persons: latent traits and CRM profiles, drawn with numpy block by block.

Faker (zh_CN) only supplies vocabularies (surnames with their frequencies, given
names, occupations); every row is sampled with numpy, because calling Faker per
row costs about 23 us a call. Cities come with their province and city tier
(tier 1 = Beijing, Shanghai, Guangzhou, Shenzhen ... tier 5 = county towns).

Latent traits (all per person, see :func:`draw_traits`):

* ``interest`` ~ Gamma(k, 1/k) (mean 1): multiplies every conversion probability;
  reported as ``purchase_rate``.
* ``price_sensitivity`` ~ Beta(2, 2): tilts product choice toward cheap items.
* ``affinity_<channel>`` ~ LogNormal(-s^2/2, s) (mean 1): multiplies the
  conversion probability of touches of that channel.
* ``churn_hazard`` h ~ Gamma(a, 1/(a L)); the latent dropout time is
  ``tau = t0 + Exp(1)/h`` (after tau the person never buys and stops engaging).

>>> from privdomain.simulate.population import vocabularies
>>> v = vocabularies()
>>> len(v["cities"]) > 30 and "北京" in v["cities"]["city"].tolist()
True
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema

__all__ = [
    "AGE_BANDS",
    "AGE_P",
    "DEVICES",
    "DEVICE_P",
    "MOBILE_PREFIXES",
    "PHONE_DOMAIN",
    "vocabularies",
    "draw_traits",
    "draw_profiles",
    "phone_numbers",
    "phone_key",
    "phone_digest",
    "phone_hash",
    "persons_table",
]


# province, city, tier, weight (rough share of WeChat users)
_CITIES = [
    ("北京市", "北京", 1, 6), ("上海市", "上海", 1, 6), ("广东省", "广州", 1, 5), ("广东省", "深圳", 1, 5),
    ("四川省", "成都", 2, 4), ("浙江省", "杭州", 2, 4), ("重庆市", "重庆", 2, 4), ("湖北省", "武汉", 2, 3),
    ("陕西省", "西安", 2, 3), ("江苏省", "南京", 2, 3), ("江苏省", "苏州", 2, 3), ("天津市", "天津", 2, 3),
    ("湖南省", "长沙", 2, 3), ("河南省", "郑州", 2, 3), ("山东省", "青岛", 2, 2), ("辽宁省", "沈阳", 2, 2),
    ("浙江省", "宁波", 2, 2), ("广东省", "东莞", 2, 2), ("云南省", "昆明", 2, 2), ("山东省", "济南", 2, 2),
    ("福建省", "厦门", 3, 2), ("福建省", "福州", 3, 2), ("江苏省", "无锡", 3, 2), ("安徽省", "合肥", 3, 2),
    ("广东省", "佛山", 3, 2), ("黑龙江省", "哈尔滨", 3, 2), ("吉林省", "长春", 3, 2), ("江西省", "南昌", 3, 2),
    ("广西壮族自治区", "南宁", 3, 2), ("贵州省", "贵阳", 3, 1), ("山西省", "太原", 3, 1), ("河北省", "石家庄", 3, 2),
    ("浙江省", "温州", 3, 1), ("甘肃省", "兰州", 3, 1), ("海南省", "海口", 3, 1), ("内蒙古自治区", "呼和浩特", 3, 1),
    ("江苏省", "扬州", 4, 1), ("湖南省", "岳阳", 4, 1), ("河南省", "洛阳", 4, 1), ("山东省", "潍坊", 4, 1),
    ("湖北省", "宜昌", 4, 1), ("四川省", "绵阳", 4, 1), ("广东省", "汕头", 4, 1), ("安徽省", "芜湖", 4, 1),
    ("河北省", "保定", 4, 1), ("江西省", "赣州", 4, 1), ("云南省", "大理", 5, 1), ("贵州省", "遵义", 5, 1),
    ("甘肃省", "天水", 5, 1), ("广西壮族自治区", "桂林", 5, 1), ("新疆维吾尔自治区", "乌鲁木齐", 3, 1),
]
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55+"]
AGE_P = [0.2, 0.36, 0.24, 0.13, 0.07]
DEVICES = ["ios", "android", "other"]
DEVICE_P = [0.32, 0.66, 0.02]
MOBILE_PREFIXES = [130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157, 158, 159,
                   166, 176, 177, 178, 180, 181, 182, 183, 185, 186, 187, 188, 189, 191, 198, 199]
#: the domain string of the ``phone_hash`` key (see :func:`phone_key`)
PHONE_DOMAIN = b"privdomain.simulate/phone_hash/v2"
_MULT = 48_271 * 2 + 1  # odd and not a multiple of 5: a bijection modulo 10**8


@lru_cache(maxsize=1)
def vocabularies() -> dict[str, object]:
    """Name, occupation and city vocabularies (Faker zh_CN lists, built once)."""
    from faker.providers.job.zh_CN import Provider as Jobs
    from faker.providers.person.zh_CN import Provider as Person

    last = list(Person.last_names.keys())
    lw = np.array(list(Person.last_names.values()), dtype=float)
    first_f = list(dict.fromkeys(Person.first_names_female))
    first_m = list(dict.fromkeys(Person.first_names_male))
    jobs = sorted(set(Jobs.jobs))
    cities = pd.DataFrame(_CITIES, columns=["province", "city", "tier", "weight"])
    return {"last": last, "last_p": lw / lw.sum(), "first_female": first_f, "first_male": first_m,
            "jobs": jobs, "cities": cities}


def draw_traits(rng: np.random.Generator, n: int, traits: dict, channels: list[str], t0: np.ndarray) -> dict:
    """Latent traits of ``n`` persons (see the module docstring)."""
    k = traits["interest_shape"]
    interest = rng.gamma(k, 1.0 / k, n)
    price = rng.beta(2.0, 2.0, n)
    s = traits["affinity_sigma"]
    aff = np.exp(rng.normal(-s * s / 2, s, (n, len(channels)))) if s > 0 else np.ones((n, len(channels)))
    a = traits["lifetime_shape"]
    hazard = rng.gamma(a, 1.0 / (a * traits["lifetime_days"]), n)
    tau = t0 + rng.exponential(1.0, n) / hazard
    return {"interest": interest, "price_sensitivity": price, "affinity": aff, "churn_hazard": hazard, "tau": tau}


def draw_profiles(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Profile attributes as integer codes into the vocabularies (cheap to draw)."""
    v = vocabularies()
    cities = v["cities"]
    w = cities["weight"].to_numpy(float)
    female = rng.random(n) < 0.62
    return {
        "female": female,
        "age": rng.choice(len(AGE_BANDS), n, p=AGE_P),
        "city": rng.choice(len(cities), n, p=w / w.sum()),
        "job": rng.integers(0, len(v["jobs"]), n),
        "device": rng.choice(3, n, p=DEVICE_P),
        "last": rng.choice(len(v["last"]), n, p=v["last_p"]),
        "first": rng.random(n),
        "prefix": rng.integers(0, len(MOBILE_PREFIXES), n),
    }


def phone_numbers(person_id: np.ndarray, prefix_code: np.ndarray, seed: int) -> np.ndarray:
    """11-digit mobile numbers as int64, unique per person (a bijection of the person id mod 10**8)."""
    low = (person_id.astype(np.int64) * _MULT + (int(seed) * 7_919) % 10**8) % 10**8
    return np.asarray(MOBILE_PREFIXES, dtype=np.int64)[prefix_code] * 10**8 + low


def phone_key(seed: int, key: bytes | str | None = None) -> bytes:
    """The 16-byte SipHash key behind the ``phone_hash`` ids of a run.

    With ``key`` (bytes or UTF-8 text, at least 16 bytes; see
    :func:`privdomain.privacy.as_key`) it is ``HMAC-SHA256(key, PHONE_DOMAIN)[:16]``, so
    whoever lacks that key cannot recompute the ids. Without one it is derived from the
    seed, ``HMAC-SHA256(PHONE_DOMAIN, "seed:<seed>")[:16]``: the same seed gives the same
    bytes, and the ids are no longer a public bijection of the phone; but the seed is
    in ``dataset.json``, so anyone holding the dataset can derive the key and try every
    phone number. Pass a key (``simulate(key=...)`` or ``PRIVDOMAIN_KEY``) for ids that
    cannot be traced back without it.

    >>> len(phone_key(1)), phone_key(1) == phone_key(1) != phone_key(2)
    (16, True)
    """
    from ..privacy import as_key

    if key is None:
        return hmac.new(PHONE_DOMAIN, f"seed:{int(seed)}".encode(), hashlib.sha256).digest()[:16]
    return hmac.new(as_key(key), PHONE_DOMAIN, hashlib.sha256).digest()[:16]


def phone_digest(phone: np.ndarray, key: bytes) -> np.ndarray:
    """The 64-bit keyed hash behind a ``phone_hash`` id: SipHash-2-4 of the number under ``key``.

    ``key`` is a 16-byte key from :func:`phone_key`. Without the key the hash cannot be
    inverted (it used to be an unkeyed bijection of the salted number).
    """
    from ..privacy import siphash24

    return siphash24(np.asarray(phone).astype(np.int64), key)


def phone_hash(phone: np.ndarray | list, key: bytes) -> np.ndarray:
    """The ``phone_hash`` id of phone numbers (``"ph"`` + :func:`phone_digest` of the number, in decimal).

    >>> k = phone_key(1)
    >>> phone_hash(["13800000000"], k).tolist() == phone_hash([13800000000], k).tolist()
    True
    """
    p = np.asarray([int(x) for x in phone] if not isinstance(phone, np.ndarray) else phone)
    digits = pc.cast(pa.array(phone_digest(p, key)), pa.string())
    return np.asarray(pc.binary_join_element_wise("ph", digits, ""), dtype=object)


def _strings(values: list[str], codes: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(codes))


def persons_table(
    person_id: np.ndarray,
    prof: dict[str, np.ndarray],
    acquisition: np.ndarray,
    crm_join_ns: np.ndarray,
    purchases: np.ndarray,
    seed: int,
) -> pa.Table:
    """The CRM ``persons`` table (schema.PERSONS) of one block, as Arrow.

    ``crm_join_ns`` is the CRM join instant (int64 ns UTC, or -1 when the person
    never joined: then name and phone are null). ``purchases`` is the number of
    paid purchases, which sets the member level (0 none, 1-2 silver, 3-5 gold, 6+
    platinum).
    """
    v = vocabularies()
    cities = v["cities"]
    female = prof["female"]
    ff, fm = v["first_female"], v["first_male"]
    first_idx = np.where(female, (prof["first"] * len(ff)).astype(int), (prof["first"] * len(fm)).astype(int))
    first = pc.if_else(pa.array(female), _strings(ff, np.minimum(first_idx, len(ff) - 1)),
                       _strings(fm, np.minimum(first_idx, len(fm) - 1)))
    names = pc.binary_join_element_wise(_strings(v["last"], prof["last"]), first, "")
    member = crm_join_ns >= 0
    phone = pc.cast(pa.array(phone_numbers(person_id, prof["prefix"], seed)), pa.string())
    level = np.select([purchases >= 6, purchases >= 3, purchases >= 1], [3, 2, 1], 0)
    level = np.where(member, level, 0)
    join = pa.array(np.where(member, crm_join_ns, 0).view("datetime64[ns]"), pa.timestamp("ns", tz=schema.TIMEZONE),
                    mask=~member)
    null_mask = pa.array(~member)
    none = pa.scalar(None, pa.string())
    return pa.table({
        "person_id": pa.array(person_id.astype(np.int64)),
        "gender": _strings(["male", "female"], female.astype(np.int8)),
        "age_band": _strings(AGE_BANDS, prof["age"]),
        "province": _strings(cities["province"].tolist(), prof["city"]),
        "city": _strings(cities["city"].tolist(), prof["city"]),
        "city_tier": pa.array(cities["tier"].to_numpy(np.int64)[prof["city"]]),
        "occupation": _strings(v["jobs"], prof["job"]),
        "device": _strings(DEVICES, prof["device"]),
        "member_level": _strings(["none", "silver", "gold", "platinum"], level),
        "crm_join_date": join,
        "name": pc.if_else(null_mask, none, names),
        "phone": pc.if_else(null_mask, none, phone),
        "acquisition_channel": pa.array(np.asarray(acquisition, dtype=object), pa.string()),
    })
