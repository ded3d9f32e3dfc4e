"""Upload sessions: where a blob upload stands (offset, resumable hash state, driver state).

Any process sharing the database can take the next request of a session another one started;
`advance_upload` is a compare-and-set on the offset, so two requests cannot both move it."""

from __future__ import annotations

from .engine import Row
from .records import UploadRecord
from .sql import SqlStore

_COLUMNS = "id, registry_id, repository, byte_offset, hash_state, driver_state, created_at, updated_at"


class SqlUploads(SqlStore):
    async def create_upload(self, upload: UploadRecord) -> None:
        await self._engine.execute(
            "INSERT INTO uploads (id, registry_id, repository, byte_offset, hash_state, "
            "driver_state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            upload.id,
            upload.registry_id,
            upload.repository,
            upload.offset,
            upload.hash_state,
            upload.driver_state,
            upload.created_at,
            upload.updated_at,
        )

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = await self._engine.fetchone(f"SELECT {_COLUMNS} FROM uploads WHERE id = ?", upload_id)
        return None if row is None else _upload(row)

    async def registry_uploads(self, registry_id: str) -> list[UploadRecord]:
        rows = await self._engine.fetchall(
            f"SELECT {_COLUMNS} FROM uploads WHERE registry_id = ? ORDER BY id", registry_id
        )
        return [_upload(row) for row in rows]

    async def idle_uploads(self, before: int, limit: int) -> list[UploadRecord]:
        rows = await self._engine.fetchall(
            f"SELECT {_COLUMNS} FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
            before,
            limit,
        )
        return [_upload(row) for row in rows]

    async def count_uploads(self) -> int:
        row = await self._engine.fetchone("SELECT COUNT(*) FROM uploads")
        return int(row[0]) if row is not None else 0

    async def advance_upload(
        self,
        upload_id: str,
        expected_offset: int,
        offset: int,
        hash_state: bytes,
        driver_state: bytes,
        now: int,
    ) -> bool:
        changed = await self._engine.execute(
            "UPDATE uploads SET byte_offset = ?, hash_state = ?, driver_state = ?, updated_at = ? "
            "WHERE id = ? AND byte_offset = ?",
            offset,
            hash_state,
            driver_state,
            now,
            upload_id,
            expected_offset,
        )
        return changed > 0

    async def delete_upload(self, upload_id: str) -> bool:
        return await self._engine.execute("DELETE FROM uploads WHERE id = ?", upload_id) > 0


def _upload(row: Row) -> UploadRecord:
    return UploadRecord(row[0], row[1], row[2], row[3], bytes(row[4]), bytes(row[5]), row[6], row[7])
