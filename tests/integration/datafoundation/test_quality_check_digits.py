"""The SQL check-digit functions of migration 121 against check digits computed here in Python,
independently of the SQL (the USCC side also against the registry simulator's own generator)."""

from __future__ import annotations

import random

import psycopg

from simulators.departments.enterprise_registry import make_uscc

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_card(rng: random.Random) -> str:
    body = "340621" + f"{rng.randint(1950, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def test_uscc_valid_matches_the_generator(database_url: str) -> None:
    rng = random.Random(7)
    good = [make_uscc(rng) for _ in range(200)]
    bad = [make_uscc(rng, valid=False) for _ in range(200)]
    odd = ["", "91340621MA2N0000X", "91340621MA2N0000XYZ", "91340621IA2N00001X",
           "9134062lMA2N00001X"]
    with psycopg.connect(database_url) as conn:
        verdicts = conn.execute("SELECT c, uscc_valid(c) FROM unnest(%s::text[]) c",
                                (good + bad + odd,)).fetchall()
        assert conn.execute("SELECT uscc_valid(NULL)").fetchone()[0] is None
    result = dict(verdicts)
    assert all(result[c] for c in good)
    assert not any(result[c] for c in bad + odd)
    # a published code (国家税务总局's own USCC) passes
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT uscc_valid('11100000000013127D')").fetchone()[0] is True


def test_id_card_valid(database_url: str) -> None:
    rng = random.Random(11)
    good = [id_card(rng) for _ in range(300)]
    assert any(c.endswith("X") for c in good)
    bad = [c[:17] + ("0" if c[17] != "0" else "1") for c in good[:100]]
    odd = ["", "34062119900101123", "3406211990010112345", "34062119900101123x",
           "3406211990O101123X"]
    with psycopg.connect(database_url) as conn:
        result = dict(conn.execute("SELECT c, id_card_valid(c) FROM unnest(%s::text[]) c",
                                   (good + bad + odd,)).fetchall())
        # GB 11643-1999's own worked example
        assert conn.execute("SELECT id_card_valid('11010519491231002X')").fetchone()[0] is True
    assert all(result[c] for c in good)
    assert not any(result[c] for c in bad + odd)


def test_functions_are_inlined(database_url: str) -> None:
    """Inlined into the query, not one function call per row: the rule scan depends on it."""
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE codes (c text)")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN VERBOSE SELECT count(*) FILTER (WHERE NOT uscc_valid(c)"
            " OR NOT id_card_valid(c)) FROM codes").fetchall())
    assert "uscc_valid" not in plan and "id_card_valid" not in plan
    assert "strpos" in plan
