//! The operator dashboard: the page at `/ui` (embedded in the binary, no build step) and the
//! admin routes only it needs: an overview of today, one run, the audit log live (server-sent
//! events) and as CSV. Every data route needs the admin token, like the rest of the admin
//! API; the page itself holds no data and is served without it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use vendorgate::{format_usd, AuditQuery, AuditRow, Gateway};

use crate::admin::{check_admin, parse_since, ApiError};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
        .route("/v1/overview", get(overview))
        .route("/v1/runs/{run_id}", get(run))
        .route("/v1/audit/stream", get(stream))
        .route("/v1/audit.csv", get(csv))
}

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// Only the page's own files: no inline script or style, no other origin, not framable.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The files change with the binary; `no-cache` revalidates instead of serving an old page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// The filters the live log and the CSV export take beyond the store's own (key, run).
#[derive(Deserialize, Default)]
struct AuditFilter {
    key_id: Option<String>,
    run_id: Option<String>,
    vendor: Option<String>,
    decision: Option<String>,
    money_state: Option<String>,
    since: Option<String>,
    after_id: Option<i64>,
    limit: Option<usize>,
}

impl AuditFilter {
    fn wanted(f: &Option<String>) -> Option<&str> {
        f.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    fn matches(&self, r: &AuditRow) -> bool {
        let is = |want: &Option<String>, got: Option<&str>| {
            Self::wanted(want).is_none_or(|w| got == Some(w))
        };
        let decision = match Self::wanted(&self.decision) {
            None => true,
            // `refused` stands for every decision but `forwarded`.
            Some("refused") => r.decision != "forwarded",
            Some(w) => r.decision == w,
        };
        decision
            && is(&self.vendor, r.vendor.as_deref())
            && is(&self.money_state, r.money_state.as_deref())
    }

    fn query(&self, after_id: Option<i64>, limit: usize) -> Result<AuditQuery, ApiError> {
        Ok(AuditQuery {
            key_id: Self::wanted(&self.key_id).map(str::to_string),
            run_id: Self::wanted(&self.run_id).map(str::to_string),
            since_ms: self.since.as_deref().map(parse_since).transpose()?,
            after_id,
            limit,
        })
    }
}

/// How often a live log asks the store for new rows. Polling the store (not an in-process
/// channel) is what shows rows written by every process sharing it.
const POLL: Duration = Duration::from_millis(250);

/// `GET /v1/audit/stream`: rows after `after_id` (default: the newest row now) as they are
/// written, one `audit` event each (`id:` is the row id, `data:` the row as `GET /v1/audit`
/// shows it).
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<AuditFilter>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let gateway = state.gateway.clone();
    let after = match f.after_id {
        Some(id) => id,
        None => gateway
            .audit(AuditQuery {
                limit: 1,
                ..Default::default()
            })
            .await?
            .last()
            .map_or(0, |r| r.id),
    };
    // Fail on a bad filter now, with a 400, rather than inside the stream.
    f.query(Some(after), 1)?;
    let tail = Tail {
        gateway,
        filter: f,
        after,
        ready: VecDeque::new(),
        failing: false,
    };
    let events = futures_util::stream::unfold(tail, |mut t| async move {
        loop {
            if let Some(row) = t.ready.pop_front() {
                let event = Event::default()
                    .event("audit")
                    .id(row.id.to_string())
                    .data(row.to_json().to_string());
                return Some((Ok::<_, Infallible>(event), t));
            }
            tokio::time::sleep(if t.failing { POLL * 8 } else { POLL }).await;
            let query = match t.filter.query(Some(t.after), 500) {
                Ok(q) => q,
                Err(_) => return None,
            };
            match t.gateway.audit(query).await {
                Ok(rows) => {
                    t.failing = false;
                    for r in rows {
                        t.after = t.after.max(r.id);
                        if t.filter.matches(&r) {
                            t.ready.push_back(r);
                        }
                    }
                }
                Err(e) => {
                    let first = !t.failing;
                    t.failing = true;
                    if first {
                        let event = Event::default()
                            .event("error")
                            .data(json!({"error": e.to_string()}).to_string());
                        return Some((Ok(event), t));
                    }
                }
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

struct Tail {
    gateway: Gateway,
    filter: AuditFilter,
    after: i64,
    ready: VecDeque<AuditRow>,
    /// The last poll failed: an `error` event was sent once, polls slow down.
    failing: bool,
}

const CSV_COLUMNS: &str = "id,time,key_id,run_id,vendor,method,endpoint,decision,status,upstream_status,estimate_usd,cost_usd,money_state,latency_ms,upstream_latency_ms,idempotency_key,vendor_request_id,message,spend_id";

/// At most this many rows in one export (ask again with `after_id` for more).
const CSV_MAX_ROWS: usize = 1_000_000;

/// `GET /v1/audit.csv`: the audit log, oldest first, with the live log's filters.
async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<AuditFilter>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let max = f.limit.unwrap_or(CSV_MAX_ROWS).min(CSV_MAX_ROWS);
    let mut out = String::from(CSV_COLUMNS);
    out.push('\n');
    let mut after = f.after_id.unwrap_or(0);
    let mut written = 0;
    'pages: loop {
        let rows = state.gateway.audit(f.query(Some(after), 10_000)?).await?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            after = after.max(r.id);
            if !f.matches(&r) {
                continue;
            }
            csv_row(&mut out, &r);
            written += 1;
            if written >= max {
                break 'pages;
            }
        }
    }
    let mut resp = out.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"vendorgate-audit.csv\""),
    );
    Ok(resp)
}

fn csv_row(out: &mut String, r: &AuditRow) {
    let j = r.to_json();
    let fields: Vec<String> = CSV_COLUMNS
        .split(',')
        .map(|c| match &j[c] {
            Value::Null => String::new(),
            Value::String(s) => csv_text(s),
            v => v.to_string(),
        })
        .collect();
    out.push_str(&fields.join(","));
    out.push('\n');
}

/// Quote when needed, and defuse text a spreadsheet would run as a formula: an agent chooses
/// its `Idempotency-Key` and paths, and this file is opened by an operator.
fn csv_text(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The overview reads at most this many of the newest audit rows (it says when it stopped).
const OVERVIEW_ROWS: usize = 10_000;
/// "Spending fastest" means over this window.
const RATE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// `GET /v1/overview`: today (UTC) from the audit log: spend by money state, the keys that
/// spent most against their caps, the runs spending fastest, refusals, and the calls whose
/// cost is still pending or unknown.
async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let g = &state.gateway;
    let now = g.now_ms();
    let day_start = now - now.rem_euclid(86_400_000);
    let newest = g
        .audit(AuditQuery {
            limit: OVERVIEW_ROWS,
            ..Default::default()
        })
        .await?;
    // Newest N rows, oldest first: cut to today without asking the store to scan by time.
    let truncated = newest.len() >= OVERVIEW_ROWS && newest[0].time_ms >= day_start;
    let rows: Vec<&AuditRow> = newest.iter().filter(|r| r.time_ms >= day_start).collect();

    let mut by_state: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_key: HashMap<&str, i64> = HashMap::new();
    let mut runs: HashMap<&str, (i64, u64)> = HashMap::new();
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut forwarded, mut refused) = (0u64, 0u64);
    for r in &rows {
        if r.decision == "forwarded" {
            forwarded += 1;
        } else {
            refused += 1;
            *reasons.entry(r.decision.as_str()).or_default() += 1;
        }
        let Some(state) = r.money_state.as_deref() else {
            continue;
        };
        *by_state.entry(state).or_default() += r.cost_micros;
        if let Some(k) = r.key_id.as_deref() {
            *by_key.entry(k).or_default() += r.cost_micros;
        }
        if r.time_ms >= now - RATE_WINDOW_MS {
            if let Some(run) = r.run_id.as_deref() {
                let e = runs.entry(run).or_default();
                e.0 += r.cost_micros;
                e.1 += 1;
            }
        }
    }
    let spend_today: i64 = by_state.values().sum();

    let mut top: Vec<(&str, i64)> = by_key.into_iter().filter(|(_, m)| *m > 0).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut top_keys = Vec::new();
    for (key_id, _) in top.into_iter().take(10) {
        // The key's own counters, not the audit sum: they include other days and reservations.
        if let Ok(status) = g.key_status(key_id).await {
            top_keys.push(status.to_json());
        }
    }

    let mut fastest: Vec<(&str, (i64, u64))> =
        runs.into_iter().filter(|(_, (m, _))| *m > 0).collect();
    fastest.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let window_min = RATE_WINDOW_MS / 60_000;
    let fastest_runs: Vec<Value> = fastest
        .into_iter()
        .take(10)
        .map(|(run_id, (micros, calls))| {
            json!({
                "run_id": run_id,
                "spent_usd": format_usd(micros),
                "per_minute_usd": format_usd(micros / window_min),
                "calls": calls,
            })
        })
        .collect();

    let recent = |pred: &dyn Fn(&AuditRow) -> bool| -> Vec<Value> {
        rows.iter()
            .rev()
            .filter(|r| pred(r))
            .take(20)
            .map(|r| r.to_json())
            .collect()
    };
    let unsettled_states = ["pending", "unknown", "reserved"];
    let body = json!({
        "day": vendorgate::gateway::utc_day(now),
        "rows_read": rows.len(),
        "truncated": truncated,
        "forwarded": forwarded,
        "refused": refused,
        "refusals_by_reason": reasons,
        "spend_today_usd": format_usd(spend_today),
        "spend_by_state_usd": by_state.iter().map(|(s, m)| (s.to_string(), json!(format_usd(*m)))).collect::<serde_json::Map<_, _>>(),
        "top_keys": top_keys,
        "rate_window_minutes": window_min,
        "fastest_runs": fastest_runs,
        "recent_refusals": recent(&|r| r.decision != "forwarded"),
        "unsettled": recent(&|r| r.money_state.as_deref().is_some_and(|s| unsettled_states.contains(&s))),
    });
    Ok(Json(body).into_response())
}

/// `GET /v1/runs/{run_id}`: the run's keys, its audit rows (oldest first, up to 10,000) and
/// what it was estimated to cost against what was settled.
async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let g = &state.gateway;
    let keys = g.list_keys(Some(run_id.clone()), false, 100).await?;
    let rows = g
        .audit(AuditQuery {
            run_id: Some(run_id.clone()),
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    if keys.is_empty() && rows.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "not_found", "message": format!("no key or audit row has run id {:?}", run_id.chars().take(64).collect::<String>())}}),
        ));
    }
    let forwarded: Vec<&AuditRow> = rows.iter().filter(|r| r.decision == "forwarded").collect();
    let estimate: i64 = forwarded.iter().map(|r| r.estimate_micros).sum();
    let settled: i64 = rows.iter().map(|r| r.cost_micros).sum();
    let mut by_state: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &rows {
        if let Some(s) = r.money_state.as_deref() {
            *by_state.entry(s).or_default() += r.cost_micros;
        }
    }
    Ok(Json(json!({
        "run_id": run_id,
        "keys": keys.iter().map(|k| k.to_json()).collect::<Vec<_>>(),
        "calls": rows.len(),
        "forwarded": forwarded.len(),
        "refused": rows.len() - forwarded.len(),
        "estimate_usd": format_usd(estimate),
        "settled_usd": format_usd(settled),
        "by_state_usd": by_state.iter().map(|(s, m)| (s.to_string(), json!(format_usd(*m)))).collect::<serde_json::Map<_, _>>(),
        "rows": rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_text_quotes_and_defuses_formulas() {
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
    }

    #[test]
    fn refused_filter_means_every_decision_but_forwarded() {
        let f = AuditFilter {
            decision: Some("refused".into()),
            ..Default::default()
        };
        let row = |d: &str| AuditRow {
            decision: d.into(),
            ..Default::default()
        };
        assert!(f.matches(&row("spend_cap_exceeded")));
        assert!(!f.matches(&row("forwarded")));
        let f = AuditFilter {
            vendor: Some("stripe".into()),
            money_state: Some("unknown".into()),
            ..Default::default()
        };
        let mut r = row("forwarded");
        r.vendor = Some("stripe".into());
        assert!(!f.matches(&r));
        r.money_state = Some("unknown".into());
        assert!(f.matches(&r));
    }
}
