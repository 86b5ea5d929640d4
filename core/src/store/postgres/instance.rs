//! Instances: each heartbeats in `instances` with the database's clock; a sweeper in every
//! instance turns the reservations of instances that stopped heartbeating into `unknown`
//! (still counted, never released automatically: the vendor may have acted on them). And, in
//! `revocation = "notify"` mode, the listener that hears revocations made elsewhere.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool};
use parking_lot::Mutex;
use tokio_postgres::AsyncMessage;

use super::connect;
use super::ops::{self, Res, NOW_MS};
use super::options::PgOptions;

pub(super) type Watchers = Arc<Mutex<Vec<Box<dyn Fn() + Send + Sync>>>>;

pub(super) async fn register<C: GenericClient>(c: &C, instance: &str) -> Res<()> {
    let host = std::env::var("HOSTNAME").ok();
    ops::exec(c, &format!(
        "INSERT INTO instances (instance_id, host, started_ms, heartbeat_ms) VALUES ($1, $2, {NOW_MS}, {NOW_MS})
         ON CONFLICT (instance_id) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms"),
        &[&instance, &host],
    )
    .await?;
    Ok(())
}

/// Heartbeat, then sweep, every `opts.heartbeat_every`, until the runtime stops.
pub(super) async fn heartbeat_and_sweep(pool: Pool, instance: Arc<str>, opts: PgOptions) {
    let mut tick = tokio::time::interval(opts.heartbeat_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(client) = pool.get().await else {
            tracing::warn!("heartbeat: no database connection");
            continue;
        };
        // Upsert: an instance whose row was cleaned away (a long partition) registers again.
        if let Err(f) = register(&client, &instance).await {
            tracing::warn!(error = %f.error, "heartbeat failed");
            continue;
        }
        match sweep(client, &opts).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                reservations = n,
                "swept reservations of instances that stopped: now unknown (still counted)"
            ),
            Err(f) => tracing::warn!(error = %f.error, "sweep failed"),
        }
    }
}

/// Turn reservations held by no live instance (or held far longer than any call lasts) into
/// `unknown`, one key at a time under the
/// key's lock (the same lock order as every batch, so the sweep never deadlocks with them).
pub(super) async fn sweep(mut client: deadpool_postgres::Object, opts: &PgOptions) -> Res<u64> {
    let dead = format!(
        "s.state = 'reserved' AND (s.reserved_db_ms < {NOW_MS} - $2 OR NOT EXISTS (SELECT 1 FROM instances i
         WHERE i.instance_id = s.instance_id AND i.heartbeat_ms >= {NOW_MS} - $1))"
    );
    let stale = opts.instance_timeout.as_millis() as i64;
    let lost = opts.max_in_flight.as_millis() as i64;
    let keys: Vec<String> = ops::rows(
        &client,
        &format!("SELECT DISTINCT s.key_id FROM spends s WHERE {dead} ORDER BY 1"),
        &[&stale, &lost],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut swept = 0;
    for key in keys {
        let tx = client.transaction().await?;
        ops::lock_keys(&tx, &[key.as_str()]).await?;
        let rows = ops::rows(
            &tx,
            &format!("WITH u AS (UPDATE spends s SET state = 'unknown', updated_at_ms = {NOW_MS} WHERE s.key_id = $3 AND {dead}
                                 RETURNING s.spend_id, s.amount)
                      SELECT u.spend_id, u.amount, k.run_id, k.vendor, {NOW_MS} FROM u JOIN keys k ON k.key_id = $3"),
            &[&stale, &lost, &key],
        )
        .await?;
        // The operator hears of each one (spend.unknown), in the sweep's own transaction.
        let events: Vec<_> = rows
            .iter()
            .map(|r| {
                let (run_id, vendor): (Option<String>, String) = (r.get(2), r.get(3));
                let who = crate::events::Subject {
                    key_id: &key,
                    run_id: run_id.as_deref(),
                    vendor: &vendor,
                };
                crate::events::spend_unknown(
                    r.get(4),
                    who,
                    r.get(0),
                    "a call in flight at an instance that stopped",
                    r.get(1),
                    "the instance holding this call stopped before the vendor's answer was recorded; counted at its estimate",
                )
            })
            .collect();
        super::outbox::insert_events(&tx, &events).await?;
        swept += rows.len() as u64;
        tx.commit().await?;
    }
    // Rows of instances gone for a day are history.
    ops::exec(
        &client,
        &format!("DELETE FROM instances WHERE heartbeat_ms < {NOW_MS} - 86400000"),
        &[],
    )
    .await?;
    Ok(swept)
}

/// Listen for revocations (`NOTIFY vendorgate_keys`) on a connection of its own, and tell
/// the watchers (the gateway drops its cached keys). `listening` is true only while the
/// LISTEN is in place: in between, cached keys are not trusted at all. Reconnects forever.
pub(super) async fn listen(opts: PgOptions, listening: Arc<AtomicBool>, watchers: Watchers) {
    let tell = |w: &Watchers| {
        for f in w.lock().iter() {
            f();
        }
    };
    loop {
        match listen_once(&opts, &listening, &watchers, &tell).await {
            Ok(()) => tracing::warn!("revocation listener disconnected; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "revocation listener failed; retrying"),
        }
        listening.store(false, Ordering::Release);
        tell(&watchers);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn listen_once(
    opts: &PgOptions,
    listening: &AtomicBool,
    watchers: &Watchers,
    tell: &impl Fn(&Watchers),
) -> Result<(), crate::error::StoreError> {
    let cfg = connect::pg_config(opts)?;
    let (client, mut conn) = cfg
        .connect(connect::tls(opts)?)
        .await
        .map_err(ops::Fail::from)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    client
        .batch_execute("LISTEN vendorgate_keys")
        .await
        .map_err(ops::Fail::from)?;
    // Anything cached before the LISTEN was in place may have missed a notice.
    listening.store(true, Ordering::Release);
    tell(watchers);
    while rx.recv().await.is_some() {
        tell(watchers);
    }
    driver.abort();
    Ok(())
}
