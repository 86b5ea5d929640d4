//! Row helpers shared by the SQLite store and its audit journal: cached statements and the
//! one audit-row insert (so the journal's replay writes rows exactly as the store does).

use rusqlite::{params, Connection};

use crate::audit::AuditRow;

/// Run a statement through the connection's statement cache: compiling SQL (and the
/// triggers it fires) was the largest single cost of a write before this.
pub(super) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// One row of a cached statement.
pub(super) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// One audit row; `journal_ref` for a row that went through the journal.
pub(super) fn insert_audit(
    tx: &Connection,
    a: &AuditRow,
    journal_ref: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time_ms, key_id, run_id, vendor, method, endpoint, decision, status, upstream_status, estimate, cost, money_state, latency_us, upstream_latency_us, idempotency_key, vendor_request_id, message, journal_ref, spend_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        a.time_ms,
        a.key_id,
        a.run_id,
        a.vendor,
        a.method,
        a.endpoint,
        a.decision,
        a.status,
        a.upstream_status,
        a.estimate_micros,
        a.cost_micros,
        a.money_state,
        a.latency_us,
        a.upstream_latency_us,
        a.idempotency_key,
        a.vendor_request_id,
        a.message,
        journal_ref,
        a.spend_id
    ])?;
    Ok(())
}
