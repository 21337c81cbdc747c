use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// No password (the default when no password is configured; the server binds loopback).
    #[default]
    Trust,
    Md5,
    ScramSha256,
}

/// The background VACUUM DELETE's default period.
pub const DEFAULT_AUTO_VACUUM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Leader settings (the part of the server configuration the leader needs).
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub data_dir: PathBuf,
    pub nodes: u32,
    pub slices_per_node: u32,
    pub database: String,
    pub superuser: String,
    /// Password of the superuser; when set, clients must authenticate with `auth`.
    pub password: Option<String>,
    pub auth: AuthMethod,
    /// How often the background VACUUM DELETE looks for tables whose deleted rows passed the
    /// threshold; `None` turns it off.
    pub auto_vacuum_interval: Option<std::time::Duration>,
    /// The secret every internal request between the leader and the compute nodes carries.
    /// An in-process cluster makes one up when none is given.
    pub cluster_secret: Option<String>,
    /// TLS for the internal connections (with compute nodes in other processes).
    pub internal_tls: Option<basalt_mpp::TlsConfig>,
    /// Rows a DISTSTYLE AUTO table may hold and stay ALL; past it the leader redistributes
    /// the table in the background.
    pub auto_all_max_rows: u64,
    /// How often the leader looks for AUTO tables to redistribute; `None` turns it off.
    pub auto_dist_interval: Option<std::time::Duration>,
    /// With compute nodes in processes of their own (`basalt leader`): the address of the
    /// leader's internal server, where they register. `None`: the nodes run in this process.
    pub internal_listen: Option<String>,
    /// S3 endpoint and credentials from the config file, under the `AWS_*` environment and
    /// a statement's own credentials.
    pub s3: basalt_io::S3Settings,
    /// Bytes of a text file one COPY parser takes at a time (whole records); chunks are
    /// parsed side by side. Small values exercise chunk boundaries in tests.
    pub copy_chunk_bytes: usize,
}

/// The default of [`LeaderConfig::copy_chunk_bytes`].
pub const DEFAULT_COPY_CHUNK_BYTES: usize = 8 << 20;

impl LeaderConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        LeaderConfig {
            data_dir,
            nodes: 1,
            slices_per_node: 2,
            database: "dev".into(),
            superuser: "basalt".into(),
            password: None,
            auth: AuthMethod::Trust,
            auto_vacuum_interval: Some(DEFAULT_AUTO_VACUUM_INTERVAL),
            cluster_secret: None,
            internal_listen: None,
            internal_tls: None,
            auto_all_max_rows: crate::autodist::DEFAULT_AUTO_ALL_MAX_ROWS,
            auto_dist_interval: Some(std::time::Duration::from_secs(30)),
            s3: Default::default(),
            copy_chunk_bytes: DEFAULT_COPY_CHUNK_BYTES,
        }
    }
}
