//! Connecting: the URL, TLS (rustls, no OpenSSL), the session's fail-closed timeouts, the
//! pool, and the startup check that the database keeps its commits.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::ops::Fail;
use super::options::PgOptions;
use crate::error::StoreError;

/// The URL without its password, for messages.
pub(super) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

/// The driver's configuration: the URL plus the session settings every connection gets.
pub(super) fn pg_config(opts: &PgOptions) -> Result<tokio_postgres::Config, StoreError> {
    let mut cfg: tokio_postgres::Config = opts.url.parse().map_err(|e| {
        StoreError::Unsafe(format!("invalid database URL {}: {e}", redacted(&opts.url)))
    })?;
    // A stuck lock or statement becomes an error (503), never a hung request; a session that
    // died mid-transaction cannot hold a key's lock for long.
    let ms = |d: Duration| d.as_millis().max(1);
    let session = format!(
        "-c lock_timeout={} -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        ms(opts.lock_timeout),
        ms(opts.statement_timeout),
        ms(opts.statement_timeout * 5),
    );
    let options = match cfg.get_options() {
        Some(o) if !o.is_empty() => format!("{o} {session}"),
        _ => session,
    };
    cfg.options(&options);
    if cfg.get_application_name().is_none() {
        cfg.application_name("vendorgate");
    }
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(opts.pool_wait);
    }
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(30));
    Ok(cfg)
}

/// TLS through rustls: the web PKI roots, plus the operator's own CA file if given.
/// `sslmode=require` in the URL makes TLS mandatory (the certificate is always verified);
/// the default `prefer` uses TLS when the server offers it.
pub(super) fn tls(opts: &PgOptions) -> Result<MakeRustlsConnect, StoreError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &opts.ca_file {
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
            StoreError::Unsafe(format!("cannot read CA file {}: {e}", path.display()))
        })?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                StoreError::Unsafe(format!("bad certificate in {}: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                StoreError::Unsafe(format!("bad certificate in {}: {e}", path.display()))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Unsafe(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

pub(super) fn pool(opts: &PgOptions, size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        pg_config(opts)?,
        tls(opts)?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(opts.pool_wait))
        .create_timeout(Some(opts.pool_wait))
        .recycle_timeout(Some(opts.pool_wait))
        .build()
        .map_err(|e| StoreError::Unsafe(format!("database pool: {e}")))
}

/// Refuse a database that acknowledges commits before they are durable: a reservation the
/// gateway forwarded could vanish in a crash, and money would move uncounted.
pub(super) async fn check_durability(
    client: &deadpool_postgres::Object,
    opts: &PgOptions,
) -> Result<(), StoreError> {
    let row = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .map_err(Fail::from)?;
    let mode: String = row.get(0);
    if mode.eq_ignore_ascii_case("off") && !opts.allow_async_commit {
        return Err(StoreError::Unsafe(
            "the database runs with synchronous_commit = off: a reservation could be lost in a \
             crash after the vendor was called. Set synchronous_commit = on (or remote_apply with a \
             synchronous standby) for vendorgate's role or database"
                .into(),
        ));
    }
    let fsync: String = client
        .query_one("SHOW fsync", &[])
        .await
        .map_err(Fail::from)?
        .get(0);
    if fsync.eq_ignore_ascii_case("off") {
        tracing::warn!("the database runs with fsync = off: commits do not survive an OS crash (fine for tests only)");
    }
    Ok(())
}
