//! `vendorgate keys …` and `vendorgate audit …`, against a server or a local database.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use vendorgate::client::Handle;
use vendorgate::{AuditQuery, Config, Gateway, KeySpec, Vendor};
use vendorgate_server::ServerError;

use crate::Target;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Issue a vault key (shown once).
    Issue(Box<IssueArgs>),
    /// Revoke a key by key id or vault key; its next request gets 401.
    Revoke {
        /// key_… id or vk_… vault key
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// List keys.
    List {
        /// Only keys of this run.
        #[arg(long)]
        run_id: Option<String>,
        /// Only keys neither revoked nor expired.
        #[arg(long)]
        active: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Show one key's policy and spend.
    Show {
        /// key_… id or vk_… vault key
        key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Args)]
pub struct IssueArgs {
    /// stripe, twilio or resend.
    #[arg(long)]
    vendor: String,
    /// Cap over the key's whole life, in USD (e.g. 500 or 12.50).
    #[arg(long, allow_hyphen_values = true)]
    max_usd: Option<String>,
    /// Cap per UTC day, in USD.
    #[arg(long, allow_hyphen_values = true)]
    daily_usd_cap: Option<String>,
    /// An allowed endpoint, "METHOD /path" or "/path" (* one segment, ** the rest). Repeat.
    #[arg(long = "allow", value_name = "ENDPOINT")]
    allow: Vec<String>,
    /// Time to live: seconds or 30s / 15m / 2h / 7d.
    #[arg(long, default_value = "1h")]
    expires_in: String,
    /// Run this key belongs to.
    #[arg(long)]
    run_id: Option<String>,
    /// Metadata as a JSON object.
    #[arg(long)]
    metadata: Option<String>,
    /// Refuse the same money-moving action again within this long (seconds or 90s / 10m;
    /// 0: off; default: the gateway's duplicate_window_secs).
    #[arg(long)]
    duplicate_window: Option<String>,
    /// A budget the key joins (see `vendorgate budgets`). Repeat.
    #[arg(long = "budget", value_name = "NAME")]
    budgets: Vec<String>,
    /// Warn (a spend.threshold_crossed event) at these fractions of each cap: 0.5,0.8.
    #[arg(long, value_delimiter = ',', value_name = "FRACTION")]
    alert_at: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long)]
    run_id: Option<String>,
    #[arg(long)]
    key_id: Option<String>,
    /// At most this many rows (the newest).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Keep printing new rows as they arrive.
    #[arg(long)]
    follow: bool,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn handle(target: &Target) -> Result<Handle, ServerError> {
    match (&target.server, &target.db) {
        (Some(url), _) => Ok(Handle::connect(url, target.admin_token.clone())?),
        (None, Some(db)) => {
            if !vendorgate::is_postgres_url(db) && !std::path::Path::new(db).exists() {
                return Err(ServerError::Usage(format!("database {db} does not exist; start `vendorgate serve --db {db}` once or check the path")));
            }
            let config = Config::default();
            let store = crate::db::open(db, &Default::default(), config.store_busy_timeout, false)?;
            Ok(Handle::Embedded(Gateway::new(config, store)?))
        }
        (None, None) => Err(ServerError::Usage(
            "say where: --server URL (a running vendorgate) or --db FILE (a local database)".into(),
        )),
    }
}

pub async fn keys(cmd: KeysCommand) -> Result<(), ServerError> {
    match cmd {
        KeysCommand::Issue(a) => {
            let vendor = Vendor::parse(&a.vendor).ok_or_else(|| {
                ServerError::Usage(format!(
                    "--vendor {:?} is not one of stripe, twilio, resend",
                    a.vendor
                ))
            })?;
            let mut spec = KeySpec::new(vendor);
            spec.max_usd = a
                .max_usd
                .as_deref()
                .map(|v| vendorgate::parse_usd("--max-usd", v))
                .transpose()?;
            spec.daily_usd_cap = a
                .daily_usd_cap
                .as_deref()
                .map(|v| vendorgate::parse_usd("--daily-usd-cap", v))
                .transpose()?;
            spec.allowed_endpoints = a.allow;
            spec.expires_in_secs =
                vendorgate::keys::parse_ttl_str(&a.expires_in).ok_or_else(|| {
                    ServerError::Usage(format!(
                        "--expires-in {:?}: use seconds or 30s / 15m / 2h / 7d",
                        a.expires_in
                    ))
                })?;
            spec.run_id = a.run_id;
            spec.budgets = a.budgets;
            if !a.alert_at.is_empty() {
                spec.alert_at =
                    vendorgate::alerts::parse_alert_at(Some(&serde_json::json!(a.alert_at)))?;
            }
            if let Some(w) = &a.duplicate_window {
                spec.duplicate_window_secs =
                    Some(vendorgate::keys::parse_ttl_str(w).ok_or_else(|| {
                        ServerError::Usage(format!(
                            "--duplicate-window {w:?}: use seconds or 90s / 10m / 1h, 0 for off"
                        ))
                    })?);
            }
            if let Some(m) = a.metadata {
                spec.metadata = serde_json::from_str(&m)
                    .map_err(|e| ServerError::Usage(format!("--metadata is not JSON: {e}")))?;
            }
            let v = handle(&a.target)?.issue_key(spec).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("vault_key   {}", s(&v["vault_key"]));
                println!("key_id      {}", s(&v["key_id"]));
                println!("vendor      {}", s(&v["vendor"]));
                println!("expires_at  {}", s(&v["expires_at"]));
                println!("max_usd     {}", s(&v["policy"]["max_usd"]));
                println!("daily cap   {}", s(&v["policy"]["daily_usd_cap"]));
                println!("allowed     {}", v["policy"]["allowed_endpoints"]);
                eprintln!("(the vault key is shown only now; the gateway keeps only its hash)");
            }
        }
        KeysCommand::Revoke { key, target } => {
            handle(&target)?.revoke(&key).await?;
            println!("revoked");
        }
        KeysCommand::List {
            run_id,
            active,
            json,
            target,
        } => {
            let keys = handle(&target)?.list_keys(run_id, active).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&keys).unwrap_or_default()
                );
            } else {
                println!(
                    "{:<29} {:<7} {:<16} {:>10} {:>10} {:>10} {:<8} EXPIRES",
                    "KEY_ID", "VENDOR", "RUN", "SPENT", "PENDING", "REMAINING", "STATE"
                );
                for k in &keys {
                    let state = if k["revoked"] == true {
                        "revoked"
                    } else if k["expired"] == true {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<29} {:<7} {:<16} {:>10} {:>10} {:>10} {:<8} {}",
                        s(&k["key_id"]),
                        s(&k["vendor"]),
                        trunc(&s(&k["run_id"]), 16),
                        s(&k["spent_usd"]),
                        s(&k["pending_usd"]),
                        s(&k["remaining_usd"]),
                        state,
                        s(&k["expires_at"])
                    );
                }
            }
        }
        KeysCommand::Show { key, json, target } => {
            let v = handle(&target)?.usage(&key).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                for f in [
                    "key_id",
                    "vendor",
                    "run_id",
                    "created_at",
                    "expires_at",
                    "revoked",
                    "spent_usd",
                    "pending_usd",
                    "reserved_usd",
                    "today_usd",
                    "remaining_usd",
                ] {
                    println!("{:<14}{}", f, s(&v[f]));
                }
                println!("{:<14}{}", "policy", v["policy"]);
            }
        }
    }
    Ok(())
}

/// A JSON value as a table cell: strings bare, null as "-".
pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Print audit rows as a table (or JSON lines).
pub fn print_audit(rows: &[Value], json: bool, header: bool) {
    if json {
        for r in rows {
            println!("{r}");
        }
        return;
    }
    if header {
        println!(
            "{:<24} {:<16} {:<7} {:<6} {:<34} {:<22} {:>4} {:>10} {:>10} {:<9} {:>8}",
            "TIME",
            "RUN",
            "VENDOR",
            "METHOD",
            "ENDPOINT",
            "DECISION",
            "HTTP",
            "ESTIMATE",
            "COST",
            "MONEY",
            "MS"
        );
    }
    for r in rows {
        println!(
            "{:<24} {:<16} {:<7} {:<6} {:<34} {:<22} {:>4} {:>10} {:>10} {:<9} {:>8.1}",
            s(&r["time"]),
            trunc(&s(&r["run_id"]), 16),
            s(&r["vendor"]),
            s(&r["method"]),
            trunc(&s(&r["endpoint"]), 34),
            s(&r["decision"]),
            s(&r["status"]),
            s(&r["estimate_usd"]),
            s(&r["cost_usd"]),
            s(&r["money_state"]),
            r["latency_ms"].as_f64().unwrap_or(0.0)
        );
    }
}

pub async fn audit(a: AuditArgs) -> Result<(), ServerError> {
    let h = handle(&a.target)?;
    let query = AuditQuery {
        key_id: a.key_id.clone(),
        run_id: a.run_id.clone(),
        limit: a.limit,
        ..AuditQuery::default()
    };
    let rows = h.audit(query.clone()).await?;
    print_audit(&rows, a.json, true);
    if !a.follow {
        return Ok(());
    }
    let mut last = rows.last().and_then(|r| r["id"].as_i64()).unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rows = h
            .audit(AuditQuery {
                after_id: Some(last),
                limit: 1000,
                ..query.clone()
            })
            .await?;
        if let Some(l) = rows.last().and_then(|r| r["id"].as_i64()) {
            last = l;
        }
        print_audit(&rows, a.json, false);
    }
}
