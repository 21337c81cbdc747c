//! S3 endpoint and credentials, the AWS way.

use crate::IoError;

/// Endpoint, region and credentials for S3 locations. Layers, later ones winning: the
/// environment ([`S3Settings::from_env`]), the server's config file, the statement's own
/// (`ACCESS_KEY_ID ... SECRET_ACCESS_KEY ... [SESSION_TOKEN]`, `CREDENTIALS '...'`, `REGION`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `http(s)://host:port` of an S3-compatible server; AWS itself when unset.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &set(&self.access_key_id))
            .field("secret_access_key", &set(&self.secret_access_key))
            .field("session_token", &set(&self.session_token))
            .finish()
    }
}

impl S3Settings {
    /// `AWS_ENDPOINT_URL_S3` (else `AWS_ENDPOINT_URL`), `AWS_REGION` (else
    /// `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`.
    pub fn from_env() -> S3Settings {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// As [`S3Settings::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> S3Settings {
        S3Settings {
            endpoint: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            session_token: get("AWS_SESSION_TOKEN"),
        }
    }

    /// These settings with every field `other` sets taken from `other`. Credentials go
    /// together: a layer that names an access key replaces the secret and token too.
    pub fn overlaid_with(&self, other: &S3Settings) -> S3Settings {
        let keys = other.access_key_id.is_some();
        S3Settings {
            endpoint: other.endpoint.clone().or_else(|| self.endpoint.clone()),
            region: other.region.clone().or_else(|| self.region.clone()),
            access_key_id: if keys {
                other.access_key_id.clone()
            } else {
                self.access_key_id.clone()
            },
            secret_access_key: if keys {
                other.secret_access_key.clone()
            } else {
                self.secret_access_key.clone()
            },
            session_token: if keys {
                other.session_token.clone()
            } else {
                self.session_token.clone()
            },
        }
    }

    /// Redshift's `CREDENTIALS 'aws_access_key_id=..;aws_secret_access_key=..[;token=..]'`.
    /// `aws_iam_role=arn` is accepted and uses the configured credentials (no STS here).
    pub fn from_credentials(text: &str) -> Result<S3Settings, IoError> {
        let mut out = S3Settings::default();
        let mut role = false;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(IoError::Credentials(
                    "expected key=value pairs separated by ';'".into(),
                ));
            };
            let v = Some(v.trim().to_string());
            match k.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => out.access_key_id = v,
                "aws_secret_access_key" => out.secret_access_key = v,
                "token" | "aws_session_token" => out.session_token = v,
                "aws_iam_role" => role = true,
                other => {
                    return Err(IoError::Credentials(format!("unknown key '{other}'")));
                }
            }
        }
        if out.access_key_id.is_some() != out.secret_access_key.is_some() {
            return Err(IoError::Credentials(
                "aws_access_key_id and aws_secret_access_key go together".into(),
            ));
        }
        if out.access_key_id.is_none() && !role {
            return Err(IoError::Credentials(
                "neither access keys nor aws_iam_role".into(),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_credentials() {
        let env = S3Settings::from_lookup(|k| match k {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".into()),
            "AWS_ACCESS_KEY_ID" => Some("envkey".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".into()),
            "AWS_SESSION_TOKEN" => Some("envtoken".into()),
            _ => None,
        });
        assert_eq!(env.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let stmt =
            S3Settings::from_credentials("aws_access_key_id=AK;aws_secret_access_key=SK").unwrap();
        let both = env.overlaid_with(&stmt);
        assert_eq!(both.access_key_id.as_deref(), Some("AK"));
        assert_eq!(
            both.session_token, None,
            "the statement's keys come without a token"
        );
        assert_eq!(both.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let shown = format!("{both:?}");
        assert!(!shown.contains("SK") && !shown.contains("AK"), "{shown}");

        let role = S3Settings::from_credentials("aws_iam_role=arn:aws:iam::1:role/r").unwrap();
        assert_eq!(env.overlaid_with(&role), env);
        assert!(S3Settings::from_credentials("aws_access_key_id=AK").is_err());
        assert!(S3Settings::from_credentials("garbage").is_err());
    }
}
