//! `vendorgate webhooks …` and `vendorgate events`: where warnings go, and what was sent.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use vendorgate::gateway::MAX_EVENTS;
use vendorgate_server::ServerError;

use crate::keys::{handle, s};
use crate::Target;

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Add a receiver; prints its signing secret, the only time it is shown.
    Create {
        /// The receiver's http(s) URL.
        url: String,
        /// Event types it receives, comma-separated (default: every type).
        #[arg(long, value_delimiter = ',', value_name = "TYPE")]
        events: Vec<String>,
        /// `standard`: Standard Webhooks JSON, signed; `slack`: a Slack incoming-webhook message.
        #[arg(long, value_enum, default_value_t = Format::Standard)]
        format: Format,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// List receivers (never their secrets).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a receiver; its pending deliveries are not sent.
    Delete {
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Standard,
    Slack,
}

#[derive(Args)]
pub struct EventsArgs {
    /// How many of the newest events (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

pub async fn webhooks(cmd: WebhooksCommand) -> Result<(), ServerError> {
    match cmd {
        WebhooksCommand::Create {
            url,
            events,
            format,
            json: as_json,
            target,
        } => {
            let mut spec = json!({ "url": url });
            if !events.is_empty() {
                spec["events"] = json!(events);
            }
            if let Format::Slack = format {
                spec["format"] = json!("slack");
            }
            let w = handle(&target)?.create_webhook(spec).await?;
            if as_json {
                println!("{w}");
            } else {
                println!("webhook   {}", s(&w["id"]));
                println!("url       {}", s(&w["url"]));
                println!("events    {}", list(&w["events"]));
                println!("format    {}", s(&w["format"]));
                println!("secret    {}", s(&w["secret"]));
                println!("(the secret is shown only now: keep it where the receiver verifies signatures)");
            }
        }
        WebhooksCommand::List {
            json: as_json,
            target,
        } => {
            let all = handle(&target)?.webhooks().await?;
            if as_json {
                println!("{}", Value::Array(all));
            } else {
                println!("{:<28} {:<9} {:<10} URL", "ID", "FORMAT", "STATE");
                for w in &all {
                    let state = match w["disabled"].as_str() {
                        Some(_) => "disabled",
                        None => "active",
                    };
                    println!(
                        "{:<28} {:<9} {:<10} {} ({})",
                        s(&w["id"]),
                        s(&w["format"]),
                        state,
                        s(&w["url"]),
                        list(&w["events"])
                    );
                }
            }
        }
        WebhooksCommand::Delete { id, target } => {
            handle(&target)?.delete_webhook(&id).await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

pub async fn events(a: EventsArgs) -> Result<(), ServerError> {
    if !(1..=MAX_EVENTS).contains(&a.limit) {
        return Err(ServerError::Usage(format!(
            "--limit {} is out of range: give 1 to {MAX_EVENTS}",
            a.limit
        )));
    }
    let all = handle(&a.target)?.events(a.limit).await?;
    if a.json {
        println!("{}", Value::Array(all));
        return Ok(());
    }
    println!(
        "{:<24} {:<26} {:<20} DELIVERIES",
        "TIME", "TYPE", "BUDGET OR KEY"
    );
    for e in &all {
        let d = &e["data"];
        let who = match d["budget"].as_str() {
            Some(b) => format!("budget {b}"),
            None => s(&e["key_id"]),
        };
        let deliveries: Vec<String> = e["deliveries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        format!(
                            "{} {} ({} tries)",
                            s(&x["webhook_id"]),
                            s(&x["state"]),
                            x["attempts"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{:<24} {:<26} {:<20} {}",
            s(&e["time"]),
            s(&e["type"]),
            who,
            if deliveries.is_empty() {
                "-".into()
            } else {
                deliveries.join(", ")
            }
        );
    }
    Ok(())
}

fn list(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|| "-".into())
}
