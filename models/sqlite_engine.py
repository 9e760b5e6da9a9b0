"""The tortoise engine of our SQLite connections: tortoise's own client, except that
transactions begin IMMEDIATE (see models/database.py). Its module name must contain
"sqlite": tortoise picks the migrations' schema editor by it."""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class _ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class _ImmediateTransactionContext(SqliteTransactionContext):
    async def __aenter__(self) -> TransactionalDBClient:
        # tortoise's own leaves its lock held and the transaction as the connection when
        # BEGIN fails ("database is locked"): every later query would then hang or fail.
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        return self.connection


class FrontdeskSqliteClient(SqliteClient):
    """tortoise's SQLite client whose transactions begin IMMEDIATE."""

    def _in_transaction(self) -> TransactionContext:
        return _ImmediateTransactionContext(_ImmediateTransaction(self), self._lock)


client_class = FrontdeskSqliteClient  # what tortoise looks up in an engine module
