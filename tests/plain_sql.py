"""What the tests' own plain-SQL oracles (test_stats, test_usage) write differently on
SQLite and PostgreSQL: seconds since the epoch, two-argument min/max, a JSON number."""

from __future__ import annotations

from tortoise import connections


def _pg() -> bool:
    return bool(connections.get("default").capabilities.dialect == "postgres")


def epoch(expr: str) -> str:
    """Whole seconds since 1970 of a timestamp column or a '...+00:00' literal."""
    if _pg():
        return f"CAST(EXTRACT(EPOCH FROM CAST({expr} AS TIMESTAMPTZ)) AS DOUBLE PRECISION)"
    return f"strftime('%s', {expr})"


def secs(later: str, earlier: str) -> str:
    return f"({epoch(later)} - {epoch(earlier)})"


def least(a: str, b: str) -> str:
    return f"{'LEAST' if _pg() else 'MIN'}({a}, {b})"


def greatest(a: str, b: str) -> str:
    return f"{'GREATEST' if _pg() else 'MAX'}({a}, {b})"


def json_int(column: str, key: str) -> str:
    """An integer member of a JSON column (NULL where it is missing)."""
    if _pg():
        return f"CAST({column} ->> '{key}' AS INTEGER)"
    return f"json_extract({column}, '$.{key}')"
