//! The SQLite side of the event outbox: events (once per dedupe key), webhooks, and the
//! deliveries a worker claims and settles. Every function runs inside the caller's
//! transaction (the writer's), so an event is stored with the change that caused it.

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{exec, insert_audit};
use super::{Delivery, DeliveryOutcome, DeliveryState, StoredEvent, Webhook, WebhookFormat};
use crate::error::StoreError;
use crate::events::{types_column, types_from_column, NewEvent};

/// Store each event unless one with its dedupe key exists, and queue it for every webhook
/// subscribed to its type right now.
pub(super) fn insert_events(tx: &Connection, events: &[NewEvent]) -> rusqlite::Result<()> {
    for e in events {
        let n = exec(
            tx,
            "INSERT INTO events (id, type, dedupe, time_ms, key_id, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (dedupe) DO NOTHING",
            params![e.id, e.kind, e.dedupe, e.time_ms, e.key_id, e.payload],
        )?;
        if n == 0 {
            continue;
        }
        let seq = tx.last_insert_rowid();
        exec(
            tx,
            "INSERT INTO deliveries (event_seq, webhook_id, state, attempts, next_at_ms, updated_at_ms)
             SELECT ?1, id, 'pending', 0, ?2, ?2 FROM webhooks
             WHERE disabled IS NULL AND (events = ' * ' OR instr(events, ' ' || ?3 || ' ') > 0)",
            params![seq, e.time_ms, e.kind],
        )?;
    }
    Ok(())
}

pub(super) fn insert_webhook(tx: &Connection, w: &Webhook) -> rusqlite::Result<()> {
    exec(
        tx,
        "INSERT INTO webhooks (id, url, secret, events, format, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![w.id, w.url, w.secret, types_column(&w.events), w.format.as_str(), w.created_at_ms],
    )?;
    Ok(())
}

const WEBHOOK_COLS: &str = "w.id, w.url, w.secret, w.events, w.format, w.created_at_ms, w.disabled";

fn webhook_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Webhook> {
    let format: String = r.get(at + 4)?;
    Ok(Webhook {
        id: r.get(at)?,
        url: r.get(at + 1)?,
        secret: r.get(at + 2)?,
        events: types_from_column(&r.get::<_, String>(at + 3)?),
        // An unknown format (a newer gateway wrote it) is sent as a plain event.
        format: WebhookFormat::parse(&format).unwrap_or(WebhookFormat::Standard),
        created_at_ms: r.get(at + 5)?,
        disabled: r.get(at + 6)?,
    })
}

pub(super) fn webhooks(conn: &Connection) -> Result<Vec<Webhook>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLS} FROM webhooks w ORDER BY w.created_at_ms, w.id"
    ))?;
    let rows = stmt.query_map([], |r| webhook_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn delete_webhook(tx: &Connection, id: &str) -> rusqlite::Result<bool> {
    exec(
        tx,
        "UPDATE deliveries SET state = 'failed', last_error = 'webhook deleted' WHERE webhook_id = ?1 AND state = 'pending'",
        params![id],
    )?;
    Ok(exec(tx, "DELETE FROM webhooks WHERE id = ?1", params![id])? > 0)
}

/// Claim due deliveries: each claimed row's next attempt moves `lease_ms` ahead (so no other
/// worker takes it meanwhile) and its attempt is counted before it is made.
pub(super) fn claim(
    tx: &Connection,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT d.id, d.attempts + 1, e.id, e.type, e.payload, e.key_id, {WEBHOOK_COLS}
         FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.state = 'pending' AND d.next_at_ms <= ?1 AND w.disabled IS NULL
         ORDER BY d.next_at_ms, d.id LIMIT ?2"
    ))?;
    let due = stmt
        .query_map(params![now_ms, limit as i64], |r| {
            Ok(Delivery {
                id: r.get(0)?,
                attempt: r.get(1)?,
                event_id: r.get(2)?,
                event_type: r.get(3)?,
                payload: r.get(4)?,
                key_id: r.get(5)?,
                webhook: webhook_at(r, 6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for d in &due {
        exec(
            tx,
            "UPDATE deliveries SET attempts = attempts + 1, next_at_ms = ?2, updated_at_ms = ?3 WHERE id = ?1",
            params![d.id, now_ms + lease_ms, now_ms],
        )?;
    }
    Ok(due)
}

pub(super) fn finish_delivery(tx: &Connection, o: &DeliveryOutcome) -> rusqlite::Result<()> {
    exec(
        tx,
        "UPDATE deliveries SET state = ?2, next_at_ms = ?3, last_status = ?4, last_error = ?5, updated_at_ms = ?6 WHERE id = ?1",
        params![o.delivery_id, o.state.as_str(), o.next_at_ms, o.status, o.error, o.now_ms],
    )?;
    if let Some(reason) = &o.disable {
        exec(
            tx,
            "UPDATE webhooks SET disabled = ?2 WHERE id = (SELECT webhook_id FROM deliveries WHERE id = ?1)",
            params![o.delivery_id, reason],
        )?;
        exec(
            tx,
            "UPDATE deliveries SET state = ?2, last_error = ?3 WHERE state = 'pending' AND webhook_id = (SELECT webhook_id FROM deliveries WHERE id = ?1)",
            params![o.delivery_id, DeliveryState::Failed.as_str(), reason],
        )?;
    }
    insert_audit(tx, &o.audit, None)
}

pub(super) fn events(conn: &Connection, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, type, time_ms, key_id, payload FROM events ORDER BY seq DESC LIMIT ?1",
    )?;
    let mut out = stmt
        .query_map(params![limit as i64], |r| {
            Ok(StoredEvent {
                seq: r.get(0)?,
                id: r.get(1)?,
                kind: r.get(2)?,
                time_ms: r.get(3)?,
                key_id: r.get(4)?,
                payload: r.get(5)?,
                deliveries: vec![],
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT webhook_id, state, attempts, last_status FROM deliveries WHERE event_seq = ?1 ORDER BY webhook_id",
    )?;
    for e in &mut out {
        e.deliveries = stmt
            .query_map(params![e.seq], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(out)
}

/// Mark the key revoked (the first time only) and store `event` with that first time.
pub(super) fn revoke(
    tx: &Connection,
    key_id: &str,
    now_ms: i64,
    event: Option<&NewEvent>,
) -> rusqlite::Result<bool> {
    let first = exec(
        tx,
        "UPDATE keys SET revoked_at_ms = ?2 WHERE key_id = ?1 AND revoked_at_ms IS NULL",
        params![key_id, now_ms],
    )? > 0;
    if first {
        if let Some(e) = event {
            insert_events(tx, std::slice::from_ref(e))?;
        }
        return Ok(true);
    }
    Ok(tx
        .query_row(
            "SELECT 1 FROM keys WHERE key_id = ?1",
            params![key_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
