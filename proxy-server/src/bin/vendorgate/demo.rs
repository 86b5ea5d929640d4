//! `vendorgate demo`: offline and self-contained. A vendor simulator as upstream, the gateway
//! in front of it, scripted runaway agents, the brake firing, and the audit table.

use std::sync::Arc;

use base64::Engine;
use clap::Args;
use serde_json::Value;
use vendorgate::client::Handle;
use vendorgate::{AuditQuery, Config, Gateway, KeySpec, SqliteStore, Vendor};
use vendorgate_server::{AppState, ServerError};

/// The account SID the demo's agent puts in Twilio Basic auth, as any agent with a vault key
/// would: any `AC…` works, the gateway swaps in the real one.
const AGENT_TWILIO_SID: &str = "AC00000000000000000000000000000000";

#[derive(Args)]
pub struct DemoArgs {
    /// How many times the billing agent retries its $100 charge.
    #[arg(long, default_value_t = 200)]
    retries: usize,
    /// Print every audit row instead of collapsing repeats.
    #[arg(long)]
    full_audit: bool,
    /// Run the scripted agents against a running `vendorgate serve --upstream sim` instead of
    /// a private in-memory gateway, so their traffic shows in its dashboard (/ui). Admin
    /// token from VENDORGATE_ADMIN_TOKEN.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    #[arg(
        long,
        env = "VENDORGATE_ADMIN_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    admin_token: Option<String>,
}

/// The gateway the demo's agents call: its own, or a running one.
enum Setup {
    Own {
        sim: vendorgate_server::ServerHandle,
        sim_state: vendorgate_server::sim::SimState,
        server: vendorgate_server::ServerHandle,
    },
    Running,
}

struct Agent {
    http: reqwest::Client,
    base: String,
}

impl Agent {
    async fn post(&self, auth: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(reqwest::Method::POST, auth, path, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        auth: &str,
        path: &str,
        body: String,
    ) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        match resp {
            Ok(r) => {
                let status = r.status().as_u16();
                let v = r
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                (status, v)
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }
}

fn code_of(v: &Value) -> String {
    v.pointer("/vendorgate/reason")
        .and_then(Value::as_str)
        .map(|r| format!("vendorgate_{r}"))
        .unwrap_or_default()
}

pub async fn run(args: DemoArgs) -> Result<(), ServerError> {
    let (setup, admin, base) = match &args.server {
        Some(url) => {
            let admin = Handle::connect(url, args.admin_token.clone())?;
            let base = url.trim_end_matches('/').to_string();
            println!("vendorgate demo against {base}: watch it at {base}/ui\n");
            (Setup::Running, admin, base)
        }
        None => {
            let mut config = Config::default();
            let (sim, sim_state) = vendorgate_server::start_sim(&mut config).await?;
            let store = SqliteStore::in_memory().map_err(vendorgate::Error::from)?;
            let gateway = Gateway::new(config, Arc::new(store))?;
            let server = vendorgate_server::spawn(
                vendorgate_server::app(AppState::new(gateway.clone(), None)),
                "127.0.0.1:0",
            )
            .await
            .map_err(|source| ServerError::Listen {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
            println!(
                "vendorgate demo (offline): vendor simulator at {}, gateway at {}\n",
                sim.url(),
                server.url()
            );
            let base = server.url();
            let setup = Setup::Own {
                sim,
                sim_state,
                server,
            };
            (setup, Handle::Embedded(gateway), base)
        }
    };
    let agent = Agent {
        http: reqwest::Client::new(),
        base,
    };

    // 1. A billing agent stuck in a retry loop.
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(500_000_000);
    spec.allowed_endpoints = vec!["POST /v1/payment_intents".into()];
    spec.run_id = Some("demo-billing".into());
    // Off for this key, so the scene shows the cap; scene 2 shows the guard.
    spec.duplicate_window_secs = Some(0);
    // Warnings at 50 % and 80 % of the cap, before the hard stop at 100 %.
    spec.alert_at = vec![5000, 8000];
    let billing = admin.issue_key(spec).await?;
    let billing_auth = format!(
        "Bearer {}",
        billing["vault_key"].as_str().unwrap_or_default()
    );
    println!("1) billing agent (run demo-billing): Stripe key, max_usd $500 with warnings at 50 % and 80 %, may POST /v1/payment_intents, duplicate guard off");
    println!(
        "   retries a $100 charge {} times, 20 at a time",
        args.retries
    );
    let mut forwarded = 0;
    let mut refused: std::collections::BTreeMap<String, usize> = Default::default();
    let mut first_pi = None;
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(20));
    let agent = Arc::new(agent);
    for _ in 0..args.retries {
        let (agent, auth, sem) = (agent.clone(), billing_auth.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire().await;
            agent
                .post(
                    &auth,
                    "/v1/payment_intents",
                    &[
                        ("amount", "10000"),
                        ("currency", "usd"),
                        ("confirm", "true"),
                        ("payment_method", "pm_card_visa"),
                    ],
                )
                .await
        });
    }
    while let Some(Ok((status, v))) = tasks.join_next().await {
        if status == 200 {
            forwarded += 1;
            first_pi = first_pi.or_else(|| v["id"].as_str().map(str::to_string));
        } else {
            *refused
                .entry(format!("{status} {}", code_of(&v)))
                .or_default() += 1;
        }
    }
    println!(
        "   → forwarded {forwarded}, refused {}",
        fmt_counts(&refused)
    );
    let usage = admin
        .usage(billing["key_id"].as_str().unwrap_or_default())
        .await?;
    println!(
        "   → key spent ${}, remaining ${}\n",
        usage["spent_usd"].as_str().unwrap_or("?"),
        usage["remaining_usd"].as_str().unwrap_or("?")
    );

    // 2. A support agent refunding the same payment again and again.
    let pi = first_pi.unwrap_or_else(|| "pi_missing".into());
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(150_000_000);
    spec.allowed_endpoints = vec![
        "GET /v1/payment_intents/*".into(),
        "POST /v1/refunds".into(),
    ];
    spec.run_id = Some("demo-support".into());
    let support = admin.issue_key(spec).await?;
    let support_auth = format!(
        "Bearer {}",
        support["vault_key"].as_str().unwrap_or_default()
    );
    println!("2) support agent (run demo-support): Stripe key, max_usd $150, may GET payment intents and POST /v1/refunds; duplicate_window 10m (the default)");
    let (status, _) = agent
        .send(
            reqwest::Method::GET,
            &support_auth,
            &format!("/v1/payment_intents/{pi}"),
            String::new(),
        )
        .await;
    println!("   looks up {pi} → {status} (the gateway remembers its $100 amount)");
    for i in 1..=3 {
        let (status, v) = agent
            .post(&support_auth, "/v1/refunds", &[("payment_intent", &pi)])
            .await;
        let what = if status == 200 {
            format!(
                "forwarded, refund {} {}",
                v["id"].as_str().unwrap_or("?"),
                v["status"].as_str().unwrap_or("?")
            )
        } else {
            format!("refused {status} {}", code_of(&v))
        };
        println!("   refund #{i} of the same payment → {what}");
    }
    println!();

    // 3. An SMS burst.
    let mut spec = KeySpec::new(Vendor::Twilio);
    spec.daily_usd_cap = Some(50_000);
    spec.allowed_endpoints = vec!["POST /2010-04-01/Accounts/*/Messages.json".into()];
    spec.run_id = Some("demo-sms".into());
    let sms = admin.issue_key(spec).await?;
    let sms_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            AGENT_TWILIO_SID,
            sms["vault_key"].as_str().unwrap_or_default()
        ))
    );
    println!(
        "3) notification agent (run demo-sms): Twilio key, daily_usd_cap $0.05, may send messages"
    );
    let mut sent = 0;
    let mut refused: std::collections::BTreeMap<String, usize> = Default::default();
    for i in 1..=20 {
        let path = format!("/2010-04-01/Accounts/{}/Messages.json", AGENT_TWILIO_SID);
        let body = format!("Your order #{i} has shipped!");
        let (status, v) = agent
            .post(
                &sms_auth,
                &path,
                &[
                    ("To", "+14155550100"),
                    ("From", "+14155550199"),
                    ("Body", &body),
                ],
            )
            .await;
        if status == 201 {
            sent += 1;
        } else {
            *refused
                .entry(format!("{status} {}", code_of(&v)))
                .or_default() += 1;
        }
    }
    println!(
        "   sends 20 order notices to a US number ($0.0083 a segment) → forwarded {sent}, refused {}\n",
        fmt_counts(&refused)
    );

    // 4. Two runs share one budget.
    let team = format!(
        "demo-team-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    admin
        .create_budget(serde_json::json!({"name": team, "max_usd": "250", "alert_at": [0.8]}))
        .await?;
    println!(
        "4) two billing runs share the budget {team} ($250, a warning at 80 %); each key has a $200 cap of its own"
    );
    let mut team_auth = Vec::new();
    for run in ["demo-team-a", "demo-team-b"] {
        let mut spec = KeySpec::new(Vendor::Stripe);
        spec.max_usd = Some(200_000_000);
        spec.allowed_endpoints = vec!["POST /v1/payment_intents".into()];
        spec.run_id = Some(run.into());
        spec.budgets = vec![team.clone()];
        let k = admin.issue_key(spec).await?;
        team_auth.push(format!(
            "Bearer {}",
            k["vault_key"].as_str().unwrap_or_default()
        ));
    }
    for (who, auth, amount, customer) in [
        ("run a", &team_auth[0], "10000", "cus_demo_1"),
        ("run a", &team_auth[0], "10000", "cus_demo_2"),
        ("run b", &team_auth[1], "10000", "cus_demo_3"),
        ("run b", &team_auth[1], "4000", "cus_demo_3"),
    ] {
        let (status, v) = agent
            .post(
                auth,
                "/v1/payment_intents",
                &[
                    ("amount", amount),
                    ("currency", "usd"),
                    ("confirm", "true"),
                    ("payment_method", "pm_card_visa"),
                    ("customer", customer),
                ],
            )
            .await;
        let what = match v["vendorgate"]["budget"].as_str() {
            _ if status == 200 => "forwarded".to_string(),
            Some(b) => format!("refused {status} {} by the budget {b}", code_of(&v)),
            None => format!("refused {status} {}", code_of(&v)),
        };
        let dollars = amount.parse::<i64>().unwrap_or(0) / 100;
        println!("   {who} charges ${dollars} → {what}");
    }
    let b = admin.budget(&team).await?;
    println!(
        "   → budget counted ${} of $250, remaining ${}\n",
        b["total_usd"].as_str().unwrap_or("?"),
        b["remaining_usd"].as_str().unwrap_or("?")
    );

    // 5. Outside the allowlist, then revoked.
    println!("5) the billing agent tries a payout, then its run ends");
    let (status, v) = agent
        .post(
            &billing_auth,
            "/v1/payouts",
            &[("amount", "100"), ("currency", "usd")],
        )
        .await;
    println!("   POST /v1/payouts → {status} {}", code_of(&v));
    admin
        .revoke(billing["key_id"].as_str().unwrap_or_default())
        .await?;
    let (status, v) = agent
        .post(
            &billing_auth,
            "/v1/payment_intents",
            &[("amount", "100"), ("currency", "usd")],
        )
        .await;
    println!("   key revoked; next call → {status} {}\n", code_of(&v));

    // Warnings and the other events, as webhooks receive them (POST /v1/webhooks).
    let events = admin.events(1000).await?;
    let ours: Vec<&Value> = events
        .iter()
        .rev()
        .filter(|e| {
            let d = &e["data"];
            d["run_id"].as_str().is_some_and(|r| r.starts_with("demo-"))
                || d["budget"].as_str() == Some(team.as_str())
        })
        .collect();
    println!("Events ({}), what a webhook would receive:", ours.len());
    for e in ours {
        println!(
            "   {:<26} {}",
            e["type"].as_str().unwrap_or("?"),
            event_line(&e["data"])
        );
    }
    println!();

    if let Setup::Own { sim_state, .. } = &setup {
        let seen = sim_state.seen();
        let count = |vendor: &str| {
            seen.iter()
                .filter(|r| r.vendor == vendor && r.method == "POST")
                .count()
        };
        let carried_vault_key = seen
            .iter()
            .filter(|r| r.authorization.as_deref().is_some_and(holds_vault_key))
            .count();
        println!(
            "The simulated vendors saw {} Stripe POSTs and {} Twilio POSTs; requests that carried a vault key upstream: {carried_vault_key}.\n",
            count("stripe"),
            count("twilio")
        );
    }

    // A running gateway's store holds other traffic too: show this demo's runs only.
    let runs: &[Option<&str>] = match setup {
        Setup::Own { .. } => &[None],
        Setup::Running => &[Some("demo-billing"), Some("demo-support"), Some("demo-sms")],
    };
    let mut rows = Vec::new();
    for run in runs {
        rows.extend(
            admin
                .audit(AuditQuery {
                    run_id: run.map(Into::into),
                    limit: 10_000,
                    ..AuditQuery::default()
                })
                .await?,
        );
    }
    rows.sort_by_key(|r| r["id"].as_i64());
    println!(
        "Audit log ({} rows{}):",
        rows.len(),
        if args.full_audit {
            ""
        } else {
            ", repeats collapsed"
        }
    );
    print_collapsed(&rows, args.full_audit);
    if let Setup::Own { sim, server, .. } = setup {
        server.shutdown().await;
        sim.shutdown().await;
    }
    Ok(())
}

/// One event's data in a line: who, and what was reached or refused.
fn event_line(d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
    let who = match d["budget"].as_str() {
        Some(b) => format!("budget {b}"),
        None => format!("run {}", s("run_id")),
    };
    match (&d["threshold"], d["cap_usd"].as_str()) {
        (Value::Number(t), Some(cap)) => format!(
            "{who}: {}% of {} ${cap} reached (${} counted)",
            (t.as_f64().unwrap_or(0.0) * 100.0).round(),
            s("cap"),
            s("counted_usd")
        ),
        (_, Some(cap)) => format!(
            "{who}: {} ${cap} reached; a ${} call refused",
            s("cap"),
            s("refused_estimate_usd")
        ),
        _ if d["first_call"].is_object() => format!(
            "{who}: {} repeated; the first call was at {}",
            s("endpoint"),
            d["first_call"]["time"].as_str().unwrap_or("?")
        ),
        _ => format!("{who}: key {}", s("key_id")),
    }
}

/// Whether an Authorization value (Bearer, or Basic in base64) holds a vault key.
fn holds_vault_key(auth: &str) -> bool {
    let decoded = auth
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    auth.contains("vk_") || decoded.contains("vk_")
}

fn fmt_counts(m: &std::collections::BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(k, n)| format!("{n} × {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The audit table with runs of identical rows (same run, endpoint, decision, status)
/// shown once with a count.
fn print_collapsed(rows: &[Value], full: bool) {
    if full {
        crate::keys::print_audit(rows, false, true);
        return;
    }
    let sig = |r: &Value| {
        format!(
            "{}|{}|{}|{}|{}",
            r["run_id"], r["endpoint"], r["decision"], r["status"], r["cost_usd"]
        )
    };
    let mut groups: Vec<(Value, usize)> = vec![];
    for r in rows {
        match groups.last_mut() {
            Some((g, n)) if sig(g) == sig(r) => *n += 1,
            _ => groups.push((r.clone(), 1)),
        }
    }
    println!(
        "{:>5}  {:<13} {:<7} {:<6} {:<42} {:<22} {:>4} {:>9} {:>9} {:<9}",
        "COUNT",
        "RUN",
        "VENDOR",
        "METHOD",
        "ENDPOINT",
        "DECISION",
        "HTTP",
        "ESTIMATE",
        "COST",
        "MONEY"
    );
    for (r, n) in groups {
        let st = crate::keys::s;
        println!(
            "{:>5}  {:<13} {:<7} {:<6} {:<42} {:<22} {:>4} {:>9} {:>9} {:<9}",
            format!("{n}×"),
            st(&r["run_id"]),
            st(&r["vendor"]),
            st(&r["method"]),
            st(&r["endpoint"]),
            st(&r["decision"]),
            st(&r["status"]),
            st(&r["estimate_usd"]),
            st(&r["cost_usd"]),
            st(&r["money_state"])
        );
    }
}
