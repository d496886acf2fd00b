//! The embedded backend: SQLite in WAL mode (through rusqlite), one row per revision, as
//! k3s's kine lays it out. `synchronous=FULL` makes every acknowledged write survive a
//! crash or power loss; SQLite's journal makes a half-written row impossible.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::backend::{Backend, BackendError, Loaded, Record};

/// SQLite-backed revision log.
pub struct SqliteBackend {
    conn: Mutex<Connection>,
}

fn db_err(e: rusqlite::Error) -> BackendError {
    BackendError::Database(e.to_string())
}

impl SqliteBackend {
    /// Opens (creating if needed) the database in `dir/state.db`.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            BackendError::Other(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let conn = Connection::open(dir.join("state.db")).map_err(db_err)?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    #[cfg(test)]
    pub fn in_memory() -> Result<Self, BackendError> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    fn init(conn: Connection) -> Result<Self, BackendError> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS kv (
                 rev INTEGER PRIMARY KEY,
                 key TEXT NOT NULL,
                 value BLOB,
                 deleted INTEGER NOT NULL DEFAULT 0
             );
             CREATE INDEX IF NOT EXISTS kv_key_rev ON kv(key, rev);
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(db_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn decode(
    key: &str,
    rev: i64,
    value: Option<Vec<u8>>,
    deleted: bool,
) -> Result<Record, BackendError> {
    let value = match (deleted, value) {
        (true, _) | (false, None) => None,
        (false, Some(bytes)) => Some(Arc::new(serde_json::from_slice::<Value>(&bytes).map_err(
            |e| BackendError::Corrupt {
                key: key.to_string(),
                reason: e.to_string(),
            },
        )?)),
    };
    Ok(Record {
        key: key.to_string(),
        rev: rev as u64,
        value,
    })
}

type Row = (String, i64, Option<Vec<u8>>, bool);

fn rows(conn: &Connection, sql: &str, arg: i64) -> Result<Vec<Record>, BackendError> {
    let mut stmt = conn.prepare(sql).map_err(db_err)?;
    let raw: Vec<Row> = stmt
        .query_map(params![arg], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0))
        })
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    raw.into_iter()
        .map(|(k, rev, v, d)| decode(&k, rev, v, d))
        .collect()
}

impl Backend for SqliteBackend {
    fn load(&self, history_limit: usize) -> Result<Loaded, BackendError> {
        let conn = self.conn();
        let max: i64 = conn
            .query_row("SELECT COALESCE(MAX(rev), 0) FROM kv", [], |r| r.get(0))
            .map_err(db_err)?;
        let compacted: i64 = conn
            .query_row("SELECT value FROM meta WHERE name = 'compacted'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)?
            .unwrap_or(0);
        let current = rows(
            &conn,
            "SELECT key, rev, value, deleted FROM kv WHERE rev IN (SELECT MAX(rev) FROM kv GROUP BY key) AND deleted = 0 AND rev >= ?1",
            0,
        )?;
        let first = (max - history_limit as i64 + 1).max(compacted + 1).max(1);
        let history = rows(
            &conn,
            "SELECT key, rev, value, deleted FROM kv WHERE rev >= ?1 ORDER BY rev",
            first,
        )?;
        let history_base = rows(
            &conn,
            "SELECT key, rev, value, deleted FROM kv WHERE rev IN (SELECT MAX(rev) FROM kv WHERE rev < ?1 GROUP BY key) AND deleted = 0",
            first,
        )?;
        // compaction may have removed the newest tombstones; the revision never goes back
        let rev = max.max(compacted) as u64;
        Ok(Loaded {
            rev,
            current,
            history_base,
            history,
        })
    }

    fn append(&self, records: Vec<Record>) -> Result<(), BackendError> {
        let rows: Vec<(i64, String, Option<Vec<u8>>)> = records
            .into_iter()
            .map(|r| {
                let bytes = match &r.value {
                    Some(v) => Some(
                        serde_json::to_vec(&**v).map_err(|e| BackendError::Other(e.to_string()))?,
                    ),
                    None => None,
                };
                Ok((r.rev as i64, r.key, bytes))
            })
            .collect::<Result<_, BackendError>>()?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO kv (rev, key, value, deleted) VALUES (?1, ?2, ?3, ?4)")
                .map_err(db_err)?;
            for (rev, key, bytes) in &rows {
                insert
                    .execute(params![rev, key, bytes, bytes.is_none() as i64])
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    fn compact(&self, rev: u64) -> Result<(), BackendError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        // keep each key's latest revision; drop everything it superseded, and tombstones
        tx.execute(
            "DELETE FROM kv WHERE rev <= ?1 AND rev NOT IN (SELECT MAX(rev) FROM kv GROUP BY key)",
            params![rev as i64],
        )
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM kv WHERE rev <= ?1 AND deleted = 1",
            params![rev as i64],
        )
        .map_err(db_err)?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('compacted', ?1) ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
            params![rev as i64],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(())
    }
}
