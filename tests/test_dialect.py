"""The one module that knows both SQL dialects: its rewrites and the sort key PostgreSQL
stores where SQLite computes a NUMERIC-affinity value."""

from __future__ import annotations

import sqlite3

import pytest

from cellops.store.dialect import is_number_text, sort_key, translate


def test_placeholders_and_percent_signs_are_psycopgs():
    assert translate("SELECT * FROM t WHERE a = ? AND b LIKE 'x%' AND c LIKE ?") == \
        "SELECT * FROM t WHERE a = %s AND b LIKE 'x%%' AND c LIKE %s"


def test_a_question_mark_inside_a_literal_stays():
    assert translate("SELECT '?' , ? FROM t") == "SELECT '?' , %s FROM t"


@pytest.mark.parametrize("sqlite, postgres", [
    ("INSERT OR IGNORE INTO t (a) VALUES (?)", "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"),
    ("SELECT value FROM json_each(?)", "SELECT value FROM json_array_elements_text(%s::json)"),
    ("SELECT 1 FROM json_each(v.lineage) j WHERE json_extract(j.value, '$.name') = ?",
     "SELECT 1 FROM json_array_elements(v.lineage::json) j WHERE (j.value ->> 'name') = %s"),
    ("SELECT 1 FROM tags INDEXED BY idx_tags_key_value_run_id WHERE key = ?",
     "SELECT 1 FROM tags WHERE key = %s"),
    ("SELECT r.id FROM runs r WHERE +r.kind IN (?) AND run_count + 1 > 0",
     "SELECT r.id FROM runs r WHERE r.kind IN (%s) AND run_count + 1 > 0"),
    ("FROM m CROSS JOIN runs r ON r.id = m.id", "FROM m JOIN runs r ON r.id = m.id"),
    ("CREATE TEMP TABLE IF NOT EXISTS p (id TEXT PRIMARY KEY) WITHOUT ROWID",
     "CREATE TEMP TABLE IF NOT EXISTS p (id TEXT PRIMARY KEY)"),
    ("DELETE FROM temp.page_match", "DELETE FROM pg_temp.page_match"),
    ("UPDATE runs SET x = 1 WHERE pid IS ? AND host IS NOT ?",
     "UPDATE runs SET x = 1 WHERE pid IS NOT DISTINCT FROM %s AND host IS DISTINCT FROM %s"),
    ("INSERT INTO runs (id, user) VALUES (?, ?)", 'INSERT INTO runs (id, "user") VALUES (%s, %s)'),
    ("SELECT r.user FROM runs r WHERE r.user = 'user'", "SELECT r.user FROM runs r WHERE r.user = 'user'"),
])
def test_sqlite_spellings_become_postgresql_ones(sqlite, postgres):
    assert translate(sqlite) == postgres


VALUES = ["10", "9", "-3", "-0.5", "0", "1e3", " 7 ", "2.50", "abc", "Abc", "10x", "", "-inf",
          "nan", "b", "1.5e-3", "-2e5", "123456789012", ".5"]


def test_the_sort_key_orders_values_as_sqlite_numeric_affinity_does():
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (v TEXT, s NUMERIC GENERATED ALWAYS AS (v) VIRTUAL)")
    con.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in VALUES])
    by_sqlite = [r[0] for r in con.execute("SELECT v FROM t ORDER BY s, v")]
    assert sorted(VALUES, key=lambda v: (sort_key(v), v)) == by_sqlite


def test_number_text_is_what_sqlite_reads_as_a_number():
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE n (v NUMERIC)")
    for v in VALUES:
        con.execute("DELETE FROM n")
        con.execute("INSERT INTO n VALUES (?)", (v,))
        kind = con.execute("SELECT typeof(v) FROM n").fetchone()[0]
        assert is_number_text(v) == (kind in ("integer", "real")), v
