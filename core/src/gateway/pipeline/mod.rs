//! The request pipeline, one file per phase, in the order `run` calls them:
//!
//! | phase | file | refuses with |
//! |---|---|---|
//! | authenticate | `authenticate.rs` | 401, 403 wrong vendor, 413 |
//! | admit | `admit.rs` | 400 path / method, 403 allowlist, 503 vendor not configured |
//! | price | `price.rs` | 403 credential, 400 cannot price, 402 cap, 409 idempotency |
//! | forward | `forward.rs` | 502 / 504 from the vendor link |
//! | settle | `settle.rs` | (never: the vendor's answer goes back) |
//! | record | `record.rs` | (always runs: the audit row and the money state of a failure) |
//!
//! Every phase reads and fills one [`Call`]; none of them writes to the store except through
//! `price` (the reservation) and `record` (everything else, in one transaction).

use crate::gateway::request::{ProxyRequest, ProxyResponse, Refused};
use crate::gateway::shared::Shared;
use call::Call;

mod admit;
mod authenticate;
mod call;
mod forward;
mod price;
mod record;
mod settle;

/// The phases in order. Whatever happens, `record` runs last and writes the audit row.
pub(crate) async fn run(
    s: &Shared,
    http: &reqwest::Client,
    req: ProxyRequest,
) -> Result<ProxyResponse, Refused> {
    let mut call = Call::start(&req, s.now_ms());
    let outcome = async {
        let key = authenticate::authenticate(s, &mut call).await?;
        let creds = admit::admit(s, &key, &mut call)?;
        price::price(s, &key, &mut call).await?;
        let answer = forward::forward(s, http, &key, creds, &mut call).await?;
        Ok(settle::settle(s, &key, creds, &mut call, answer))
    }
    .await;
    record::record(s, call, outcome).await
}
