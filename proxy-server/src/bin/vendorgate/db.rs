//! What `--db` names: a SQLite file (the default, one machine) or a PostgreSQL URL (several
//! instances on several machines).

use std::sync::Arc;
use std::time::Duration;

use vendorgate::store::Store;
use vendorgate::{is_postgres_url, SqliteStore};
use vendorgate_server::ServerError;

use crate::config_file::PostgresKeys;

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DB: &str = "./vendorgate.db";

/// Open the store `db` names. `server`: the store is for `vendorgate serve` (whose HTTP
/// threads must not commit inline).
pub fn open(
    db: &str,
    pg: &PostgresKeys,
    busy_timeout: Duration,
    server: bool,
) -> Result<Arc<dyn Store>, ServerError> {
    if is_postgres_url(db) {
        return open_postgres(db, pg);
    }
    let store = SqliteStore::open_with_busy_timeout(db, busy_timeout)
        .map_err(|e| ServerError::Config(format!("cannot open database {db}: {e}")))?;
    if server {
        // An HTTP thread must not block on a commit: its other connections would wait.
        store.set_lone_writes_inline(false);
    }
    Ok(Arc::new(store))
}

#[cfg(feature = "postgres")]
fn open_postgres(db: &str, pg: &PostgresKeys) -> Result<Arc<dyn Store>, ServerError> {
    let opts = pg.options(db).map_err(ServerError::Config)?;
    let store = vendorgate::PgStore::open(opts)
        .map_err(|e| ServerError::Config(format!("cannot open the PostgreSQL database: {e}")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_db: &str, _pg: &PostgresKeys) -> Result<Arc<dyn Store>, ServerError> {
    Err(ServerError::Config(
        "this vendorgate was built without PostgreSQL support (cargo feature `postgres`)".into(),
    ))
}

/// The database for messages: a URL without its password.
pub fn shown(db: &str) -> String {
    match url::Url::parse(db) {
        Ok(mut u) if is_postgres_url(db) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        _ => db.to_string(),
    }
}
