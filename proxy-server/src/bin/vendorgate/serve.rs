//! `vendorgate serve` and `vendorgate sim`.

use std::io::Write;
use std::path::PathBuf;

use crate::config_file::FileConfig;
use clap::Args;
use vendorgate::{Gateway, Vendor};
use vendorgate_server::{sim, AppState, ServerError};

#[derive(Args)]
pub struct ServeArgs {
    /// Address for vendor routes (and the admin API unless --admin-listen is given).
    #[arg(long)]
    listen: Option<String>,
    /// Serve the admin API only on this separate address.
    #[arg(long)]
    admin_listen: Option<String>,
    /// The database: a SQLite file (created if missing) or a postgres:// URL shared by
    /// several instances.
    #[arg(long, env = "VENDORGATE_DB")]
    db: Option<String>,
    /// TOML config file (see examples/vendorgate.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `sim`: serve every vendor from the built-in simulator (offline; for trying it out).
    #[arg(long, value_parser = ["sim"])]
    upstream: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Print the URL line tests and scripts wait for, flushed at once.
fn announce(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `vendorgate-sim listening on URL {"url":URL,"env":{…}}`. The URL stays the first word after
/// the prefix, where callers have always read it; the JSON object after it repeats the URL and
/// gives the environment that points a gateway at this simulator: its credentials
/// (`STRIPE_SECRET_KEY`, …) and `VENDORGATE_{STRIPE,TWILIO,RESEND}_URL`.
fn sim_announcement(url: &str) -> String {
    let info = serde_json::json!({ "url": url, "env": sim::gateway_env(url) });
    format!("vendorgate-sim listening on {url} {info}")
}

pub async fn run_sim(listen: &str) -> Result<(), ServerError> {
    init_logs(false);
    let handle = vendorgate_server::spawn(sim::router(sim::SimState::new()), listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    announce(&sim_announcement(&handle.url()));
    shutdown_signal().await;
    handle.shutdown().await;
    Ok(())
}

pub async fn run(args: ServeArgs) -> Result<(), ServerError> {
    init_logs(args.log_json);
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let config_name = args
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(defaults)".into());
    let env = |k: &str| std::env::var(k).ok();
    let mut config = file.to_config(&config_name, &env)?;
    let _sim = match args.upstream.as_deref() {
        Some("sim") => Some(vendorgate_server::start_sim(&mut config).await?.0),
        _ => None,
    };
    let admin_token = env(file
        .admin_token_env
        .as_deref()
        .unwrap_or("VENDORGATE_ADMIN_TOKEN"))
    .filter(|t| !t.trim().is_empty());
    let db = args
        .db
        .or(file.db.clone())
        .unwrap_or_else(|| crate::db::DEFAULT_DB.into());
    let store = crate::db::open(&db, &file.postgres, config.store_busy_timeout, true)?;
    let gateway = Gateway::new(config.clone(), store)?;
    let state = AppState::new(gateway, admin_token.clone());

    let listen = args
        .listen
        .or(file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let admin_listen = args.admin_listen.or(file.admin_listen.clone());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (per_thread, with_admin) = (state.clone(), admin_listen.is_none());
    let main = vendorgate_server::spawn_per_core(&listen, threads, move || {
        let state = per_thread.with_own_connections();
        if with_admin {
            vendorgate_server::app(state)
        } else {
            vendorgate_server::vendor_router(state)
        }
    })
    .map_err(|source| ServerError::Listen {
        addr: listen.clone(),
        source,
    })?;
    let admin = match &admin_listen {
        Some(a) => Some(
            vendorgate_server::spawn(vendorgate_server::admin_router(state.clone()), a)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: a.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    announce(&format!("vendorgate listening on {}", main.url()));
    if let Some(a) = &admin {
        announce(&format!("vendorgate admin API on {}", a.url()));
    }
    for v in Vendor::ALL {
        let up = config.upstream(v);
        if up.credentials.is_some() {
            tracing::info!(vendor = %v, upstream = %up.base_url, "vendor configured");
        } else {
            tracing::warn!(vendor = %v, "vendor NOT configured: its routes answer 503 until its credentials are set (see README, Configuration)");
        }
    }
    if admin_token.is_none() {
        tracing::warn!("no admin token: the admin API answers 503; set VENDORGATE_ADMIN_TOKEN to issue keys over HTTP, or use `vendorgate keys issue --db {}`", crate::db::shown(&db));
    }
    // Webhook events wait in the store's outbox; this task sends them (and retries).
    let deliveries = state.gateway.spawn_deliveries();
    tracing::info!(db = %crate::db::shown(&db), "ready");
    shutdown_signal().await;
    deliveries.abort();
    tracing::info!("shutting down: finishing in-flight requests");
    main.shutdown().await;
    if let Some(a) = admin {
        a.shutdown().await;
    }
    if let Err(e) = state.gateway.close().await {
        tracing::error!(error = %e, "could not store every queued audit row; the next start replays them from the journal");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
