//! The PostgreSQL side of the event outbox (the same rows as SQLite's `store/outbox.rs`).
//! Each function runs on the caller's client or transaction; `insert_events` is called
//! inside the transaction of the change that caused the events.

use deadpool_postgres::GenericClient;
use tokio_postgres::{Error, Row};

use super::super::{Delivery, DeliveryOutcome, DeliveryState, StoredEvent, Webhook, WebhookFormat};
use crate::events::{types_column, types_from_column, NewEvent};

/// Store each event unless one with its dedupe key exists, and queue it for every webhook
/// subscribed to its type right now — one statement per event.
pub(super) async fn insert_events<C: GenericClient>(
    c: &C,
    events: &[NewEvent],
) -> Result<(), Error> {
    // Two transactions never wait on each other's events in a cycle: an event's dedupe key
    // is scoped to a key or a budget, and every writer of one holds that key's or budget's
    // row lock (taken in key order, then name order) before it inserts.
    for e in events {
        c.execute(
            "WITH e AS (INSERT INTO events (id, type, dedupe, time_ms, key_id, payload) VALUES ($1, $2, $3, $4, $5, $6)
                        ON CONFLICT (dedupe) DO NOTHING RETURNING seq)
             INSERT INTO deliveries (event_seq, webhook_id, state, attempts, next_at_ms, updated_at_ms)
             SELECT e.seq, w.id, 'pending', 0, $4, $4 FROM e CROSS JOIN webhooks w
             WHERE w.disabled IS NULL AND (w.events = ' * ' OR position(' ' || $2 || ' ' IN w.events) > 0)",
            &[&e.id, &e.kind, &e.dedupe, &e.time_ms, &e.key_id, &e.payload],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn insert_webhook<C: GenericClient>(c: &C, w: &Webhook) -> Result<(), Error> {
    c.execute(
        "INSERT INTO webhooks (id, url, secret, events, format, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&w.id, &w.url, &w.secret, &types_column(&w.events), &w.format.as_str(), &w.created_at_ms],
    )
    .await?;
    Ok(())
}

const WEBHOOK_COLS: &str = "w.id, w.url, w.secret, w.events, w.format, w.created_at_ms, w.disabled";

fn webhook_at(r: &Row, at: usize) -> Webhook {
    let format: String = r.get(at + 4);
    Webhook {
        id: r.get(at),
        url: r.get(at + 1),
        secret: r.get(at + 2),
        events: types_from_column(r.get(at + 3)),
        format: WebhookFormat::parse(&format).unwrap_or(WebhookFormat::Standard),
        created_at_ms: r.get(at + 5),
        disabled: r.get(at + 6),
    }
}

pub(super) async fn webhooks<C: GenericClient>(c: &C) -> Result<Vec<Webhook>, Error> {
    let rows = c
        .query(
            &format!("SELECT {WEBHOOK_COLS} FROM webhooks w ORDER BY w.created_at_ms, w.id"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| webhook_at(r, 0)).collect())
}

pub(super) async fn delete_webhook<C: GenericClient>(c: &C, id: &str) -> Result<bool, Error> {
    let rows = c
        .query(
            "WITH d AS (UPDATE deliveries SET state = 'failed', last_error = 'webhook deleted'
                        WHERE webhook_id = $1 AND state = 'pending')
             DELETE FROM webhooks WHERE id = $1 RETURNING id",
            &[&id],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Claim due deliveries (rows another worker holds are skipped, not waited for); each
/// claimed row's next attempt moves `lease_ms` ahead and its attempt is counted.
pub(super) async fn claim<C: GenericClient>(
    c: &C,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<Delivery>, Error> {
    let rows = c
        .query(
            &format!(
                "WITH due AS (
                    SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                    WHERE d.state = 'pending' AND d.next_at_ms <= $1 AND w.disabled IS NULL
                    ORDER BY d.next_at_ms, d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED),
                 c AS (UPDATE deliveries d SET attempts = d.attempts + 1, next_at_ms = $1 + $2, updated_at_ms = $1
                       FROM due WHERE d.id = due.id RETURNING d.id, d.attempts, d.event_seq, d.webhook_id)
                 SELECT c.id, c.attempts, e.id, e.type, e.payload, e.key_id, {WEBHOOK_COLS}
                 FROM c JOIN events e ON e.seq = c.event_seq JOIN webhooks w ON w.id = c.webhook_id
                 ORDER BY c.id"
            ),
            &[&now_ms, &lease_ms, &(limit as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Delivery {
            id: r.get(0),
            attempt: r.get::<_, i32>(1) as u32,
            event_id: r.get(2),
            event_type: r.get(3),
            payload: r.get(4),
            key_id: r.get(5),
            webhook: webhook_at(r, 6),
        })
        .collect())
}

/// The delivery's row (and, after a 410, its webhook's); the caller adds the audit row in
/// the same transaction.
pub(super) async fn finish_delivery<C: GenericClient>(
    c: &C,
    o: &DeliveryOutcome,
) -> Result<(), Error> {
    let status = o.status.map(i32::from);
    c.execute(
        "UPDATE deliveries SET state = $2, next_at_ms = $3, last_status = $4, last_error = $5, updated_at_ms = $6 WHERE id = $1",
        &[&o.delivery_id, &o.state.as_str(), &o.next_at_ms, &status, &o.error, &o.now_ms],
    )
    .await?;
    if let Some(reason) = &o.disable {
        c.execute(
            "UPDATE webhooks SET disabled = $2 WHERE id = (SELECT webhook_id FROM deliveries WHERE id = $1)",
            &[&o.delivery_id, reason],
        )
        .await?;
        c.execute(
            "UPDATE deliveries SET state = $2, last_error = $3 WHERE state = 'pending' AND webhook_id = (SELECT webhook_id FROM deliveries WHERE id = $1)",
            &[&o.delivery_id, &DeliveryState::Failed.as_str(), reason],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn events<C: GenericClient>(
    c: &C,
    limit: usize,
) -> Result<Vec<StoredEvent>, Error> {
    let rows = c
        .query(
            "SELECT e.seq, e.id, e.type, e.time_ms, e.key_id, e.payload,
                    COALESCE((SELECT json_agg(json_build_array(d.webhook_id, d.state, d.attempts, d.last_status) ORDER BY d.webhook_id)
                              FROM deliveries d WHERE d.event_seq = e.seq), '[]')::TEXT
             FROM events e ORDER BY e.seq DESC LIMIT $1",
            &[&(limit as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredEvent {
            seq: r.get(0),
            id: r.get(1),
            kind: r.get(2),
            time_ms: r.get(3),
            key_id: r.get(4),
            payload: r.get(5),
            deliveries: serde_json::from_str(r.get::<_, &str>(6)).unwrap_or_default(),
        })
        .collect())
}
