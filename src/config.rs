//! Server configuration: defaults < TOML file < `BASALT_*` environment < command line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{AuthMethod, Error};

/// Settings of `basalt serve`. Every field can come from the TOML file (same names), from
/// `BASALT_<NAME>` in the environment, or from the command line.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the catalog and the slices' segment files live.
    pub data_dir: PathBuf,
    /// Address to listen on; loopback by default.
    pub host: String,
    /// Postgres wire port (Redshift's default 5439).
    pub port: u16,
    /// Compute nodes started in this process.
    pub nodes: u32,
    /// Slices per node; defaults to the number of cores.
    pub slices: u32,
    /// Superuser name.
    pub user: String,
    /// Superuser password; when set, clients must authenticate.
    pub password: Option<Secret>,
    /// `trust`, `md5` or `scram-sha-256` (default: trust without a password, md5 with one).
    pub auth: Option<AuthMethod>,
    /// Log filter (`info`, `debug`, `basalt_node=debug`, ...).
    pub log: String,
    /// Seconds between the background VACUUM DELETE's checks for tables whose deleted rows
    /// passed the threshold; 0 turns it off.
    pub auto_vacuum_seconds: u32,
    /// Rows a DISTSTYLE AUTO table may hold and stay ALL.
    pub auto_all_max_rows: u64,
    /// Bytes of a text file one COPY parser takes at a time (chunks parse side by side).
    pub copy_chunk_bytes: usize,
    /// `basalt leader`: where compute nodes register (the leader's internal server).
    pub internal_listen: String,
    /// The secret every internal request carries (`basalt leader` and `basalt compute`).
    pub cluster_secret: Option<Secret>,
    /// S3 endpoint (`http(s)://host:port`) for COPY and UNLOAD; the `AWS_ENDPOINT_URL(_S3)`
    /// environment variable overrides it, as the other `aws_*` keys are by `AWS_*`.
    pub aws_endpoint_url: Option<String>,
    pub aws_region: Option<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
}

/// A configured secret (a password, the cluster secret, an AWS key): read from the file like
/// a string, never shown by `Debug`.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("basalt-data"),
            host: "127.0.0.1".into(),
            port: 5439,
            nodes: 1,
            slices: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(2),
            user: "basalt".into(),
            password: None,
            auth: None,
            log: "info".into(),
            auto_vacuum_seconds: 60,
            auto_all_max_rows: basalt_node::DEFAULT_AUTO_ALL_MAX_ROWS,
            copy_chunk_bytes: basalt_node::DEFAULT_COPY_CHUNK_BYTES,
            internal_listen: "127.0.0.1:5440".into(),
            cluster_secret: None,
            aws_endpoint_url: None,
            aws_region: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
        }
    }
}

impl ServerConfig {
    /// Read a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading config file {}", path.display()),
            source,
        })?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Apply `BASALT_*` environment variables.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let parse_u = |name: &str, v: String| -> Result<u32, Error> {
            v.parse()
                .map_err(|_| Error::Config(format!("{name}={v:?} is not a number")))
        };
        if let Some(v) = env("BASALT_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("BASALT_HOST") {
            self.host = v;
        }
        if let Some(v) = env("BASALT_PORT") {
            self.port = parse_u("BASALT_PORT", v)? as u16;
        }
        if let Some(v) = env("BASALT_NODES") {
            self.nodes = parse_u("BASALT_NODES", v)?;
        }
        if let Some(v) = env("BASALT_SLICES") {
            self.slices = parse_u("BASALT_SLICES", v)?;
        }
        if let Some(v) = env("BASALT_USER") {
            self.user = v;
        }
        if let Some(v) = env("BASALT_PASSWORD") {
            self.password = Some(Secret(v));
        }
        if let Some(v) = env("BASALT_AUTH") {
            self.auth = Some(parse_auth(&v)?);
        }
        if let Some(v) = env("BASALT_LOG") {
            self.log = v;
        }
        if let Some(v) = env("BASALT_AUTO_ALL_MAX_ROWS") {
            self.auto_all_max_rows = v.parse().map_err(|_| {
                Error::Config(format!("BASALT_AUTO_ALL_MAX_ROWS={v:?} is not a number"))
            })?;
        }
        if let Some(v) = env("BASALT_COPY_CHUNK_BYTES") {
            self.copy_chunk_bytes = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::Config(format!(
                    "BASALT_COPY_CHUNK_BYTES={v:?} is not a positive number"
                ))
            })?;
        }
        if let Some(v) = env("BASALT_INTERNAL_LISTEN") {
            self.internal_listen = v;
        }
        if let Some(v) = env("BASALT_CLUSTER_SECRET") {
            self.cluster_secret = Some(Secret(v));
        }
        if let Some(v) = env("BASALT_AUTO_VACUUM_SECONDS") {
            self.auto_vacuum_seconds = parse_u("BASALT_AUTO_VACUUM_SECONDS", v)?;
        }
        Ok(())
    }

    /// Check the settings make sense together.
    pub fn validate(&self) -> Result<(), Error> {
        if self.nodes == 0 || self.slices == 0 {
            return Err(Error::Config("nodes and slices must be at least 1".into()));
        }
        if self.nodes * self.slices > 1024 {
            return Err(Error::Config("at most 1024 slices in a cluster".into()));
        }
        if matches!(self.auth, Some(AuthMethod::Md5 | AuthMethod::ScramSha256))
            && self.password.is_none()
        {
            return Err(Error::Config(
                "auth md5/scram-sha-256 needs a password (--password or BASALT_PASSWORD)".into(),
            ));
        }
        if self.user.is_empty() {
            return Err(Error::Config("user must not be empty".into()));
        }
        Ok(())
    }

    /// The leader's part of the configuration.
    pub fn leader_config(&self) -> crate::LeaderConfig {
        let mut c = crate::LeaderConfig::new(self.data_dir.clone());
        c.nodes = self.nodes;
        c.slices_per_node = self.slices;
        c.superuser = self.user.clone();
        c.password = self.password.as_ref().map(|s| s.0.clone());
        c.auth = match (self.auth, &self.password) {
            (Some(a), _) => a,
            (None, Some(_)) => AuthMethod::Md5,
            (None, None) => AuthMethod::Trust,
        };
        c.auto_vacuum_interval = (self.auto_vacuum_seconds > 0)
            .then(|| std::time::Duration::from_secs(self.auto_vacuum_seconds.into()));
        c.cluster_secret = self.cluster_secret.as_ref().map(|s| s.0.clone());
        c.auto_all_max_rows = self.auto_all_max_rows;
        c.copy_chunk_bytes = self.copy_chunk_bytes.max(1);
        c.s3 = basalt_io::S3Settings {
            endpoint: self.aws_endpoint_url.clone(),
            region: self.aws_region.clone(),
            access_key_id: self.aws_access_key_id.clone(),
            secret_access_key: self.aws_secret_access_key.as_ref().map(|s| s.0.clone()),
            session_token: self.aws_session_token.as_ref().map(|s| s.0.clone()),
        };
        c
    }
}

/// Parse an auth method name.
pub fn parse_auth(s: &str) -> Result<AuthMethod, Error> {
    match s.to_ascii_lowercase().as_str() {
        "trust" => Ok(AuthMethod::Trust),
        "md5" => Ok(AuthMethod::Md5),
        "scram-sha-256" | "scram" => Ok(AuthMethod::ScramSha256),
        other => Err(Error::Config(format!(
            "unknown auth method {other:?} (trust, md5, scram-sha-256)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let c = ServerConfig {
            password: Some(Secret("pw-1234".into())),
            cluster_secret: Some(Secret("cs-5678".into())),
            aws_secret_access_key: Some(Secret("sk-9012".into())),
            ..Default::default()
        };
        let shown = format!("{c:?}");
        for secret in ["pw-1234", "cs-5678", "sk-9012"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(c.leader_config().password.as_deref(), Some("pw-1234"));
    }

    #[test]
    fn file_then_env_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("basalt.toml");
        std::fs::write(&path, "port = 6000\nslices = 3\ndata_dir = \"/tmp/x\"\n").unwrap();
        let mut c = ServerConfig::from_file(&path).unwrap();
        assert_eq!(c.port, 6000);
        assert_eq!(c.slices, 3);
        assert_eq!(c.host, "127.0.0.1");
        c.apply_env(|k| (k == "BASALT_PORT").then(|| "7000".to_string()))
            .unwrap();
        assert_eq!(c.port, 7000);
        c.validate().unwrap();
    }

    #[test]
    fn s3_settings_come_from_the_file_and_stay_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("basalt.toml");
        std::fs::write(
            &path,
            "aws_endpoint_url = \"http://127.0.0.1:9000\"\naws_access_key_id = \"AK\"\n\
             aws_secret_access_key = \"s3cr3t\"\n",
        )
        .unwrap();
        let c = ServerConfig::from_file(&path).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let s3 = c.leader_config().s3;
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.secret_access_key.as_deref(), Some("s3cr3t"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("basalt.toml");
        std::fs::write(&path, "prot = 1\n").unwrap();
        assert!(ServerConfig::from_file(&path).is_err());
        let mut c = ServerConfig::default();
        assert!(
            c.apply_env(|k| (k == "BASALT_SLICES").then(|| "x".to_string()))
                .is_err()
        );
        c.auth = Some(AuthMethod::Md5);
        assert!(c.validate().is_err());
    }
}
