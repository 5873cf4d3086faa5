//! Harness of the store suite: opening each back-end in a fresh place, reopening it (a
//! collector restart) and removing it afterwards.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use shaobing_collector::store::{ClickHouseOptions, RetentionPolicy, Store};

pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Embedded,
    ClickHouse,
}

/// Where a test store lives, so it can be reopened (collector restart) and removed.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    ClickHouse { url: String, database: String },
}

/// A store under test plus what is needed to reopen it.
pub struct TestStore {
    pub store: Store,
    pub location: Location,
}

impl TestStore {
    /// A new `Store` on the same data, as after a collector restart.
    pub async fn reopen(&self) -> Store {
        open_at(&self.location).await
    }
}

pub async fn open_at(location: &Location) -> Store {
    open_with(location, RetentionPolicy::default()).await
}

/// Opens the store at `location` with a retention policy.
pub async fn open_with(location: &Location, retention: RetentionPolicy) -> Store {
    match location {
        Location::Sqlite(path) => match Store::open_embedded_with(path, retention).await {
            Ok(store) => store,
            Err(e) => panic!("cannot open the embedded store at {}: {e}", path.display()),
        },
        Location::ClickHouse { url, database } => {
            let options = ClickHouseOptions {
                retention,
                ..ClickHouseOptions::database(database)
            };
            match Store::open_clickhouse_with(url, &options).await {
                Ok(store) => store,
                Err(e) => panic!(
                    "ClickHouse store test needs a server at {url} (set SHAOBING_TEST_CLICKHOUSE_URL \
                     to change it; CI always runs one), but opening it failed: {e}"
                ),
            }
        }
    }
}

pub fn clickhouse_url() -> String {
    std::env::var("SHAOBING_TEST_CLICKHOUSE_URL").unwrap_or_else(|_| DEFAULT_CLICKHOUSE_URL.into())
}

pub fn unique_database_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "shaobing_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        shaobing_wire::now_unix_nano() % 1_000_000_000
    )
}

pub async fn drop_clickhouse_database(url: &str, database: &str) {
    let result = clickhouse::Client::default()
        .with_url(url)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
    if let Err(e) = result {
        eprintln!("could not drop test database {database}: {e}");
    }
}

/// Runs one case on one back-end, then removes its data whether the case passed or not.
pub async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(TestStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let location = match backend {
        Backend::Embedded => Location::Sqlite(dir.path().join("data").join("shaobing.db")),
        Backend::ClickHouse => Location::ClickHouse {
            url: clickhouse_url(),
            database: unique_database_name(),
        },
    };
    let store = open_at(&location).await;
    let outcome = tokio::spawn(case(TestStore {
        store,
        location: location.clone(),
    }))
    .await;
    if let Location::ClickHouse { url, database } = &location {
        drop_clickhouse_database(url, database).await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
