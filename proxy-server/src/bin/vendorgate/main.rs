//! `vendorgate`: the proxy server, key and audit commands, and an offline demo. The binary's
//! modules live here, apart from the library (`src/`) that the bindings link: `serve.rs` and
//! `config_file.rs` (the server and its TOML file), `keys.rs` (the `keys` and `audit`
//! commands), `budgets.rs`, `webhooks.rs` (`webhooks` and `events`), `demo.rs`.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod budgets;
mod config_file;
mod db;
mod demo;
mod keys;
mod serve;
mod webhooks;

#[derive(Parser)]
#[command(
    name = "vendorgate",
    version,
    about = "Spend caps, endpoint allowlists and per-run vault keys between AI agents and Stripe, Twilio and Resend."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: vendor routes and the admin API.
    Serve(serve::ServeArgs),
    /// Issue, revoke, list and inspect vault keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Create, list and show budgets shared by many keys.
    Budgets {
        #[command(subcommand)]
        command: budgets::BudgetsCommand,
    },
    /// Add, list and delete the receivers of warnings and other events.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// Show the newest events (warnings, refusals at a cap, revocations…) and their deliveries.
    Events(webhooks::EventsArgs),
    /// Show the audit log: one row per request.
    Audit(keys::AuditArgs),
    /// Offline demo: a runaway agent against a built-in vendor simulator, and the brake firing.
    Demo(demo::DemoArgs),
    /// Run only the built-in vendor simulator (what `--upstream sim` and the tests use).
    Sim(SimArgs),
}

#[derive(Args)]
struct SimArgs {
    /// Address to listen on (port 0 picks a free port). One stdout line gives the URL, then a
    /// JSON object with the URL and the environment that points a gateway at the simulator.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

/// Where key and audit commands act: a running server or a local database file.
#[derive(Args, Clone)]
pub struct Target {
    /// URL of a running vendorgate server (admin token from VENDORGATE_ADMIN_TOKEN).
    #[arg(long, env = "VENDORGATE_SERVER", conflicts_with = "db")]
    server: Option<String>,
    /// A local database instead of a server: a SQLite file or a postgres:// URL.
    #[arg(long, env = "VENDORGATE_DB")]
    db: Option<String>,
    /// Admin token for --server (default: the VENDORGATE_ADMIN_TOKEN environment variable).
    #[arg(long, env = "VENDORGATE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Keys { command } => keys::keys(command).await,
            Command::Budgets { command } => budgets::budgets(command).await,
            Command::Webhooks { command } => webhooks::webhooks(command).await,
            Command::Events(a) => webhooks::events(a).await,
            Command::Audit(a) => keys::audit(a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::Sim(a) => serve::run_sim(&a.listen).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
