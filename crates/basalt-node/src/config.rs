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
}

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
        }
    }
}
