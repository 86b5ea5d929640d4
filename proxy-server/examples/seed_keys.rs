//! Fill a store with many keys through the gateway's own issue path, to measure the admin
//! API and the dashboard at scale (docs/BENCHMARKS.md, "Dashboard"). Every 10th key is
//! revoked and every 7th has a run id `seed-run-<n>`, so the key list has all its states.
//! Usage: seed_keys DB_PATH COUNT

use vendorgate::{Config, Gateway, KeySpec, Vendor};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(count)) = (args.next(), args.next()) else {
        return Err("usage: seed_keys DB_PATH COUNT".into());
    };
    let count: usize = count.parse()?;
    let gateway = Gateway::open(&db, Config::default())?;
    let started = std::time::Instant::now();
    // A few issues in flight at once, as several operators' scripts would: the store's
    // writer commits them together.
    let chunk = 64;
    let mut issued = 0;
    while issued < count {
        let n = chunk.min(count - issued);
        let batch = (issued..issued + n).map(|i| {
            let gateway = gateway.clone();
            async move {
                let vendor = Vendor::ALL[i % 3];
                let mut spec = KeySpec::new(vendor);
                spec.allowed_endpoints = vec!["POST /v1/payment_intents".into()];
                spec.max_usd = Some(((i % 50) as i64 + 1) * 10_000_000);
                spec.expires_in_secs = 3600 * (1 + (i % 48) as i64);
                if i % 7 == 0 {
                    spec.run_id = Some(format!("seed-run-{}", i / 7));
                }
                let key = gateway.issue_key(spec).await?;
                if i % 10 == 0 {
                    gateway.revoke(&key.record.key_id).await?;
                }
                Ok::<_, vendorgate::Error>(())
            }
        });
        let handles: Vec<_> = batch.map(tokio::spawn).collect();
        for h in handles {
            h.await??;
        }
        issued += n;
    }
    gateway.close().await?;
    println!(
        "issued {count} keys into {db} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
