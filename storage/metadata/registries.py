"""Tenant registries: one row each, named by a globally unique hostname label."""

from __future__ import annotations

import uuid

from .records import RegistryRecord
from .sql import SqlStore, now_ms

_COLUMNS = "id, name, created_at, account_id, properties"


class SqlRegistries(SqlStore):
    async def create_registry(
        self, name: str, account_id: str | None = None, properties: str = "{}"
    ) -> RegistryRecord:
        record = RegistryRecord(uuid.uuid4().hex, name, now_ms(), account_id, properties)
        changed = await self._engine.execute(
            "INSERT INTO registries (id, name, created_at, account_id, properties) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            record.id,
            record.name,
            record.created_at,
            record.account_id,
            record.properties,
        )
        if not changed:
            raise KeyError(name)
        return record

    async def get_registry(self, name: str) -> RegistryRecord | None:
        row = await self._engine.fetchone(f"SELECT {_COLUMNS} FROM registries WHERE name = ?", name)
        return RegistryRecord(*row) if row else None

    async def get_registry_by_id(self, registry_id: str) -> RegistryRecord | None:
        row = await self._engine.fetchone(f"SELECT {_COLUMNS} FROM registries WHERE id = ?", registry_id)
        return RegistryRecord(*row) if row else None

    async def list_registries(self) -> list[RegistryRecord]:
        rows = await self._engine.fetchall(f"SELECT {_COLUMNS} FROM registries ORDER BY name")
        return [RegistryRecord(*row) for row in rows]

    async def update_registry(self, registry_id: str, properties: str) -> RegistryRecord | None:
        await self._engine.execute(
            "UPDATE registries SET properties = ? WHERE id = ?", properties, registry_id
        )
        return await self.get_registry_by_id(registry_id)

    async def delete_registry(self, name: str) -> bool:
        async with self._engine.transaction() as tx:
            row = await tx.fetchone("SELECT id FROM registries WHERE name = ?", name)
            if row is None:
                return False
            await tx.execute("DELETE FROM uploads WHERE registry_id = ?", row[0])
            # the manifests' references first: the cascade from registries would otherwise
            # reach blob_links while manifest_blobs still names them (PostgreSQL refuses that)
            for table in ("manifest_children", "manifest_blobs"):
                await tx.execute(
                    f"DELETE FROM {table} WHERE repository_id IN "
                    "(SELECT id FROM repositories WHERE registry_id = ?)",
                    row[0],
                )
            await tx.execute("DELETE FROM registries WHERE id = ?", row[0])
            return True

    async def list_account_registries(self, account_id: str, offset: int, limit: int) -> list[RegistryRecord]:
        rows = await self._engine.fetchall(
            f"SELECT {_COLUMNS} FROM registries WHERE account_id = ? ORDER BY name LIMIT ? OFFSET ?",
            account_id,
            limit,
            offset,
        )
        return [RegistryRecord(*row) for row in rows]

    async def count_account_registries(self, account_id: str) -> int:
        row = await self._engine.fetchone("SELECT COUNT(*) FROM registries WHERE account_id = ?", account_id)
        return int(row[0]) if row else 0
