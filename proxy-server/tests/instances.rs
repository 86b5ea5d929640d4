//! Several `vendorgate serve` processes on one PostgreSQL database, as a cluster runs them:
//! caps stay exact across instances, a revocation at one is seen by the next request at every
//! other, a `kill -9` loses no charge the vendor saw, and a database outage is a 503 at every
//! instance until the database returns. Needs PostgreSQL (see core/tests/common/pg.rs); a
//! skip fails CI through `VENDORGATE_REQUIRE_PG=1`.

#[path = "../../core/tests/common/pg.rs"]
mod pg;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_vendorgate");
const TOKEN: &str = "instances-admin-token";

struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clean(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("STRIPE_")
            || k.starts_with("TWILIO_")
            || k.starts_with("RESEND_")
            || k.starts_with("VENDORGATE_")
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Start the binary and read its first stdout line: `<prefix> <url> [json]`.
fn start(args: &[&str], env: &[(String, String)]) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    clean(&mut cmd)
        .args(args)
        .envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("{args:?} printed {line:?}"))
        .to_string();
    (Proc { child, url }, line)
}

fn sim() -> (Proc, Vec<(String, String)>) {
    let (p, line) = start(&["sim", "--listen", "127.0.0.1:0"], &[]);
    let json_start = line.find('{').unwrap();
    let info: Value = serde_json::from_str(line[json_start..].trim()).unwrap();
    let env = info["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    (p, env)
}

fn serve(db: &str, config: &std::path::Path, env: &[(String, String)]) -> Proc {
    let mut env = env.to_vec();
    env.push(("VENDORGATE_ADMIN_TOKEN".into(), TOKEN.into()));
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        db,
        "--config",
        config.to_str().unwrap(),
    ];
    let (p, line) = start(&args, &env);
    assert!(line.starts_with("vendorgate listening on"), "{line}");
    p
}

async fn admin(
    c: &reqwest::Client,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c.request(method.parse().unwrap(), url).bearer_auth(TOKEN);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One $100 Stripe charge through an instance: the status the agent saw (0: no answer).
async fn charge(c: &reqwest::Client, base: &str, vault_key: &str, fault: Option<&str>) -> u16 {
    let mut r = c
        .post(format!("{base}/stripe/v1/payment_intents"))
        .bearer_auth(vault_key)
        .form(&[
            ("amount", "10000"),
            ("currency", "usd"),
            ("confirm", "true"),
            ("payment_method", "pm_card_visa"),
        ]);
    if let Some(f) = fault {
        r = r.header("X-Sim-Fault", f);
    }
    match r.send().await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    }
}

/// `n` identical charges at once, spread round robin over the instances and the keys:
/// their statuses.
async fn charge_all(
    c: &reqwest::Client,
    urls: &[String],
    vault_keys: &[String],
    n: usize,
) -> Vec<u16> {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let (c, base, vk) = (
                c.clone(),
                urls[i % urls.len()].clone(),
                vault_keys[i % vault_keys.len()].clone(),
            );
            tokio::spawn(async move { charge(&c, &base, &vk, None).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for h in calls {
        statuses.push(h.await.unwrap());
    }
    statuses
}

async fn read(c: &reqwest::Client, base: &str, vault_key: &str) -> u16 {
    c.get(format!("{base}/stripe/v1/payment_intents/pi_none"))
        .bearer_auth(vault_key)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Charges the simulated vendor received, by path.
async fn vendor_charges(c: &reqwest::Client, sim: &str) -> usize {
    let text = c
        .get(format!("{sim}/__sim/seen"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let seen: Value = serde_json::from_str(&text).unwrap();
    seen.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/payment_intents")
        .count()
}

fn usd(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

/// A Stripe key. These scenarios repeat one charge to fill a cap, so the duplicate guard is
/// off unless `guarded` (its own scenario below).
async fn issue_key(
    c: &reqwest::Client,
    base: &str,
    max_usd: &str,
    guarded: bool,
) -> (String, String) {
    let (status, key) = admin(
        c,
        "POST",
        format!("{base}/v1/keys"),
        Some(json!({
            "vendor": "stripe",
            "max_usd": max_usd,
            "allowed_endpoints": ["POST /v1/payment_intents", "GET /v1/payment_intents/*"],
            "expires_in": "1h",
            "duplicate_window": if guarded { "10m" } else { "0" },
        })),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    (
        key["key_id"].as_str().unwrap().to_string(),
        key["vault_key"].as_str().unwrap().to_string(),
    )
}

async fn issue(c: &reqwest::Client, base: &str, max_usd: &str) -> (String, String) {
    issue_key(c, base, max_usd, false).await
}

async fn reset_sim(c: &reqwest::Client, sim: &str) {
    c.post(format!("{sim}/__sim/reset")).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_database() {
    let Some(server) = pg::server() else { return };
    let db = server.database();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vendorgate.toml");
    // A short instance timeout so the sweep after `kill -9` happens within the test.
    std::fs::write(
        &config,
        "[postgres]\ninstance_timeout_ms = 1500\nheartbeat_ms = 250\npool_wait_ms = 500\n",
    )
    .unwrap();
    let (sim, env) = sim();
    let mut instances: Vec<Proc> = (0..3).map(|_| serve(&db, &config, &env)).collect();
    let urls: Vec<String> = instances.iter().map(|p| p.url.clone()).collect();
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    // 1. 200 concurrent $100 charges over three instances against a $500 cap: exactly 5.
    for trial in 0..3 {
        reset_sim(&c, &sim.url).await;
        let (key_id, vk) = issue(&c, &urls[trial % 3], "500").await;
        let statuses = charge_all(&c, &urls, std::slice::from_ref(&vk), 200).await;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let capped = statuses.iter().filter(|s| **s == 402).count();
        let vendor = vendor_charges(&c, &sim.url).await;
        println!("INSTANCES trial={trial} admitted={ok} refused_402={capped} vendor_saw={vendor}");
        assert_eq!(
            (ok, capped, vendor),
            (5, 195, 5),
            "trial {trial}: {statuses:?}"
        );
        let (_, k) = admin(&c, "GET", format!("{}/v1/keys/{key_id}", urls[2]), None).await;
        assert_eq!(usd(&k["total_usd"]), 500.0, "{k}");
    }

    // 1b. The duplicate guard across instances: 60 identical charges at once, spread over the
    // three, with the default 10-minute window → one reaches the vendor, 59 get 409.
    reset_sim(&c, &sim.url).await;
    let (_, vk) = issue_key(&c, &urls[0], "100000", true).await;
    let statuses = charge_all(&c, &urls, std::slice::from_ref(&vk), 60).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let dup = statuses.iter().filter(|s| **s == 409).count();
    let vendor = vendor_charges(&c, &sim.url).await;
    println!("INSTANCES duplicates admitted={ok} refused_409={dup} vendor_saw={vendor}");
    assert_eq!((ok, dup, vendor), (1, 59, 1), "{statuses:?}");

    // 1c. A budget shared by six keys (each with room of its own) over three instances:
    //     150 concurrent $100 charges against the budget's $500 → exactly 5 reach the vendor.
    reset_sim(&c, &sim.url).await;
    let (status, b) = admin(
        &c,
        "POST",
        format!("{}/v1/budgets", urls[1]),
        Some(json!({"name": "fleet", "max_usd": "500"})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let mut members = Vec::new();
    for i in 0..6 {
        let (status, key) = admin(
            &c,
            "POST",
            format!("{}/v1/keys", urls[i % 3]),
            Some(json!({
                "vendor": "stripe",
                "max_usd": "1000",
                "allowed_endpoints": ["POST /v1/payment_intents"],
                "duplicate_window": 0,
                "budgets": ["fleet"],
            })),
        )
        .await;
        assert_eq!(status, 201, "{key}");
        members.push(key["vault_key"].as_str().unwrap().to_string());
    }
    let statuses = charge_all(&c, &urls, &members, 150).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let capped = statuses.iter().filter(|s| **s == 402).count();
    let vendor = vendor_charges(&c, &sim.url).await;
    println!("INSTANCES budget admitted={ok} refused_402={capped} vendor_saw={vendor}");
    assert_eq!((ok, capped, vendor), (5, 145, 5), "{statuses:?}");
    let (_, b) = admin(&c, "GET", format!("{}/v1/budgets/fleet", urls[2]), None).await;
    assert_eq!(usd(&b["total_usd"]), 500.0, "{b}");

    // 2. A revocation at one instance: the next request at each other instance gets 401,
    //    money call or free call.
    let (key_id, vk) = issue(&c, &urls[0], "1000").await;
    for u in &urls {
        assert_eq!(
            read(&c, u, &vk).await,
            404,
            "the key works everywhere first"
        );
    }
    let (status, _) = admin(&c, "DELETE", format!("{}/v1/keys/{key_id}", urls[0]), None).await;
    assert_eq!(status, 204);
    for u in &urls[1..] {
        assert_eq!(
            read(&c, u, &vk).await,
            401,
            "free call at {u} after the revoke"
        );
        assert_eq!(
            charge(&c, u, &vk, None).await,
            401,
            "money call at {u} after the revoke"
        );
    }

    // 3. `kill -9` of an instance with 40 charges in flight at the vendor: the ledger still
    //    covers all of them, as unknown (counted, never released), after the sweep and after
    //    a restart.
    reset_sim(&c, &sim.url).await;
    let (key_id, vk) = issue(&c, &urls[0], "100000").await;
    // Answered calls that moved no money, at the instance about to die: their audit rows
    // were stored before their answers.
    for _ in 0..5 {
        assert_eq!(read(&c, &urls[1], &vk).await, 404);
    }
    let refused = c
        .post(format!("{}/stripe/v1/refunds", urls[1]))
        .bearer_auth(&vk)
        .form(&[("payment_intent", "pi_x")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(refused, 403, "refunds are not on the allowlist");
    let in_flight: Vec<_> = (0..40)
        .map(|_| {
            let (c, base, vk) = (c.clone(), urls[1].clone(), vk.clone());
            // The simulator holds these answers for 30 s: the instance dies first.
            tokio::spawn(async move { charge(&c, &base, &vk, Some("timeout")).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while vendor_charges(&c, &sim.url).await < 40 {
        assert!(
            Instant::now() < deadline,
            "the charges never reached the vendor"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = Instant::now();
    instances[1].child.kill().unwrap(); // SIGKILL
    instances[1].child.wait().unwrap();
    for h in in_flight {
        assert_eq!(h.await.unwrap(), 0, "no answer from a killed instance");
    }
    let vendor = vendor_charges(&c, &sim.url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let swept = loop {
        let (_, k) = admin(&c, "GET", format!("{}/v1/keys/{key_id}", urls[0]), None).await;
        if usd(&k["reserved_usd"]) == 0.0 {
            break k;
        }
        assert!(Instant::now() < deadline, "never swept: {k}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "INSTANCES kill9 vendor_saw={vendor} ledger_total_usd={} unknown_usd={} swept_after_ms={}",
        swept["total_usd"],
        swept["pending_usd"],
        killed.elapsed().as_millis()
    );
    assert!(usd(&swept["total_usd"]) >= vendor as f64 * 100.0, "{swept}");
    assert_eq!(
        usd(&swept["pending_usd"]),
        4000.0,
        "unknown, still counted: {swept}"
    );
    // The sweep told the operator: one spend.unknown event per swept call.
    let (_, events) = admin(&c, "GET", format!("{}/v1/events?limit=1000", urls[0]), None).await;
    let unknown = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "spend.unknown" && e["key_id"] == key_id.as_str())
        .count();
    println!("INSTANCES kill9 spend_unknown_events={unknown}");
    assert_eq!(unknown, 40, "{events}");
    instances[1] = serve(&db, &config, &env);
    let restarted = instances[1].url.clone();
    let (_, k) = admin(&c, "GET", format!("{restarted}/v1/keys/{key_id}"), None).await;
    assert!(
        usd(&k["total_usd"]) >= vendor as f64 * 100.0,
        "after restart: {k}"
    );
    let (_, audit) = admin(
        &c,
        "GET",
        format!("{restarted}/v1/audit?key_id={key_id}"),
        None,
    )
    .await;
    let decisions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| **d == "forwarded").count(),
        5,
        "the free reads: {decisions:?}"
    );
    assert_eq!(
        decisions
            .iter()
            .filter(|d| **d == "endpoint_not_allowed")
            .count(),
        1,
        "the refusal: {decisions:?}"
    );

    // 4. The database goes away: every instance answers 503 (and /healthz says so), nothing
    //    reaches the vendor; when it returns, so does service.
    let urls: Vec<String> = instances.iter().map(|p| p.url.clone()).collect();
    let (_, vk) = issue(&c, &urls[0], "1000").await;
    reset_sim(&c, &sim.url).await;
    server.stop();
    for u in &urls {
        assert_eq!(
            charge(&c, u, &vk, None).await,
            503,
            "money call at {u} with the database down"
        );
        assert_eq!(
            read(&c, u, &vk).await,
            503,
            "free call at {u} with the database down"
        );
        let health = c
            .get(format!("{u}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(health, 503, "/healthz at {u}");
    }
    assert_eq!(
        vendor_charges(&c, &sim.url).await,
        0,
        "nothing forwarded while down"
    );
    server.restart();
    let back = Instant::now();
    for u in &urls {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = charge(&c, u, &vk, None).await;
            if s == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "{u} did not recover: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "INSTANCES recovered_after_ms={}",
        back.elapsed().as_millis()
    );
    drop(sim);
}
