//! Which store the collector opens and how: ClickHouse (URL plus [`ClickHouseOptions`]:
//! database, cluster, insert quorum, wire compression) or the embedded SQLite file, and the
//! [`RetentionPolicy`] both enforce. Built from the command line by the binary; the rest of
//! the collector only calls [`StoreConfig::open`].

use std::path::PathBuf;

use super::{ClickHouseOptions, RetentionPolicy, Store, StoreError};

/// Where and how to store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// ClickHouse to use; `None` selects the embedded store at `embedded_path`.
    pub clickhouse: Option<ClickHouseTarget>,
    /// The embedded store's file (its directory is created if missing).
    pub embedded_path: PathBuf,
    /// How long each table is kept, on either back-end.
    pub retention: RetentionPolicy,
}

/// A ClickHouse server (or a node of a cluster) and the options to open it with.
#[derive(Debug, Clone)]
pub struct ClickHouseTarget {
    /// HTTP URL, e.g. `http://127.0.0.1:8123` (user and password may be in it).
    pub url: String,
    /// Database, cluster, quorum, compression. Its `retention` is replaced by
    /// [`StoreConfig::retention`] when opening.
    pub options: ClickHouseOptions,
}

impl StoreConfig {
    /// The embedded store at `path` with the default retention.
    pub fn embedded(path: PathBuf) -> Self {
        StoreConfig {
            clickhouse: None,
            embedded_path: path,
            retention: RetentionPolicy::default(),
        }
    }

    /// Opens the configured back-end (checking the retention policy first).
    pub async fn open(&self) -> Result<Store, StoreError> {
        self.retention.validate()?;
        match &self.clickhouse {
            Some(target) => {
                let options = ClickHouseOptions {
                    retention: self.retention,
                    ..target.options.clone()
                };
                Store::open_clickhouse_with(&target.url, &options).await
            }
            None => Store::open_embedded_with(&self.embedded_path, self.retention).await,
        }
    }
}
