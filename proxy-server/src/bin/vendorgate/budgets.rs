//! `vendorgate budgets …`: budgets shared by many keys, against a server or a local database.

use clap::Subcommand;
use serde_json::{json, Value};
use vendorgate_server::ServerError;

use crate::keys::{handle, s};
use crate::Target;

#[derive(Subcommand)]
pub enum BudgetsCommand {
    /// Create a budget; keys join it at issue (`keys issue --budget NAME`).
    Create {
        /// Letters, digits, '-', '_' or '.'.
        name: String,
        /// Cap over the budget's whole life, in USD.
        #[arg(long, allow_hyphen_values = true)]
        max_usd: Option<String>,
        /// Cap per UTC day, in USD.
        #[arg(long, allow_hyphen_values = true)]
        daily_usd_cap: Option<String>,
        /// Warn (a spend.threshold_crossed event) at these fractions of each cap: 0.5,0.8.
        #[arg(long, value_delimiter = ',', value_name = "FRACTION")]
        alert_at: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// List budgets with what their keys have counted.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// One budget: caps, spend and member keys.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn budgets(cmd: BudgetsCommand) -> Result<(), ServerError> {
    match cmd {
        BudgetsCommand::Create {
            name,
            max_usd,
            daily_usd_cap,
            alert_at,
            json: as_json,
            target,
        } => {
            let mut spec = json!({ "name": name });
            if !alert_at.is_empty() {
                spec["alert_at"] = json!(alert_at);
            }
            if let Some(m) = max_usd {
                spec["max_usd"] = json!(m);
            }
            if let Some(d) = daily_usd_cap {
                spec["daily_usd_cap"] = json!(d);
            }
            let h = handle(&target)?;
            h.create_budget(spec).await?;
            print_budget(&h.budget(&name).await?, as_json);
        }
        BudgetsCommand::List {
            json: as_json,
            target,
        } => {
            let all = handle(&target)?.budgets().await?;
            if as_json {
                println!("{}", Value::Array(all));
            } else {
                println!(
                    "{:<24} {:>12} {:>12} {:>12} {:>12} {:>5}",
                    "NAME", "MAX", "DAILY", "TOTAL", "TODAY", "KEYS"
                );
                for b in &all {
                    println!(
                        "{:<24} {:>12} {:>12} {:>12} {:>12} {:>5}",
                        s(&b["name"]),
                        s(&b["max_usd"]),
                        s(&b["daily_usd_cap"]),
                        s(&b["total_usd"]),
                        s(&b["today_usd"]),
                        b["keys"].as_array().map_or(0, Vec::len)
                    );
                }
            }
        }
        BudgetsCommand::Show {
            name,
            json: as_json,
            target,
        } => print_budget(&handle(&target)?.budget(&name).await?, as_json),
    }
    Ok(())
}

fn print_budget(b: &Value, as_json: bool) {
    if as_json {
        println!("{b}");
        return;
    }
    println!("budget      {}", s(&b["name"]));
    println!("max         {}", s(&b["max_usd"]));
    println!("daily cap   {}", s(&b["daily_usd_cap"]));
    println!(
        "counted     {} total, {} today (spent {}, pending {}, reserved {})",
        s(&b["total_usd"]),
        s(&b["today_usd"]),
        s(&b["spent_usd"]),
        s(&b["pending_usd"]),
        s(&b["reserved_usd"])
    );
    println!("remaining   {}", s(&b["remaining_usd"]));
    let keys: Vec<String> = b["keys"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    println!(
        "keys        {}",
        if keys.is_empty() {
            "-".into()
        } else {
            keys.join(", ")
        }
    );
}
