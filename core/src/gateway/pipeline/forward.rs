//! Forward: swap the vault key for the real credential (and the agent's Twilio SID for the
//! real one), wait for one of the vendor's call slots, send, and read the whole answer.

use super::call::Call;
use crate::caches::CachedKey;
use crate::config::Credentials;
use crate::credentials::{authorization_for, rewrite_twilio_path};
use crate::error::{Error, Result, UpstreamFailure};
use crate::gateway::shared::Shared;
use crate::upstream::{self, UpstreamAnswer};
use crate::vendors::Vendor;

pub(super) async fn forward(
    s: &Shared,
    http: &reqwest::Client,
    key: &CachedKey,
    creds: &Credentials,
    call: &mut Call<'_>,
) -> Result<UpstreamAnswer> {
    let cfg = &s.config;
    let vendor = key.record.policy.vendor;
    let upstream = cfg.upstream(vendor);
    let path = if vendor == Vendor::Twilio {
        rewrite_twilio_path(&call.path, creds)
    } else {
        call.path.clone()
    };
    let base = upstream.base_url.as_str().trim_end_matches('/');
    let mut url = String::with_capacity(base.len() + path.len() + 64);
    url.push_str(base);
    url.push_str(&path);
    if let Some(q) = call.query() {
        url.push('?');
        url.push_str(q);
    }
    // The agent's Authorization (the vault key) is dropped here; the real one is added.
    let mut headers = upstream::forwardable_request_headers(&call.req.headers);
    headers.insert(http::header::AUTHORIZATION, authorization_for(creds));
    let method = reqwest::Method::from_bytes(call.method.as_bytes())
        .map_err(|_| Error::BadRequest(format!("method {} is not valid", call.method)))?;

    let slot = s.slot(vendor).acquire();
    let Ok(Ok(_slot)) = tokio::time::timeout(cfg.request_timeout, slot).await else {
        return Err(Error::Upstream {
            vendor,
            kind: UpstreamFailure::ConnectFailed,
            detail: format!(
                "all {} upstream call slots stayed busy for {} ms (max_upstream_requests); nothing was sent",
                cfg.max_upstream_requests,
                cfg.request_timeout.as_millis()
            ),
        });
    };
    let sent = upstream::send(
        http,
        method,
        &url,
        headers,
        call.req.body.clone(),
        cfg.max_response_bytes,
    )
    .await;
    match sent {
        Ok(answer) => {
            call.audit.upstream_status = Some(answer.status);
            call.audit.upstream_latency_us = Some(answer.latency.as_micros() as i64);
            call.audit.vendor_request_id = upstream::vendor_request_id(&answer.headers);
            Ok(answer)
        }
        Err(e) => {
            call.audit.upstream_status = e.status;
            call.audit.upstream_latency_us = Some(e.latency.as_micros() as i64);
            tracing::warn!(vendor = %vendor, endpoint = %call.path, kind = ?e.kind, detail = %e.detail, "upstream failure");
            Err(Error::Upstream {
                vendor,
                kind: e.kind,
                detail: e.detail,
            })
        }
    }
}
