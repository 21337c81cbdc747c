//! Session settings: `SET`, `SHOW`, `RESET`, with Redshift/Postgres names.

use std::collections::BTreeMap;

/// (name, default, description) of every setting a client may SHOW.
pub(crate) const DEFAULTS: &[(&str, &str, &str)] = &[
    ("application_name", "", "Sets the application name."),
    (
        "client_encoding",
        "UTF8",
        "Sets the client's character set encoding.",
    ),
    (
        "client_min_messages",
        "notice",
        "Sets the message levels sent to the client.",
    ),
    (
        "datestyle",
        "ISO, MDY",
        "Sets the display format for date and time values.",
    ),
    (
        "default_transaction_isolation",
        "serializable",
        "Isolation level of new transactions.",
    ),
    (
        "default_transaction_read_only",
        "off",
        "Default read-only status of new transactions.",
    ),
    (
        "describe_field_name_in_uppercase",
        "off",
        "Upper-cases column names in result descriptions.",
    ),
    (
        "enable_result_cache_for_session",
        "on",
        "Result caching (accepted, no effect).",
    ),
    (
        "extra_float_digits",
        "1",
        "Sets the number of digits displayed for floating-point values.",
    ),
    ("integer_datetimes", "on", "Datetimes are integer based."),
    (
        "intervalstyle",
        "postgres",
        "Sets the display format for interval values.",
    ),
    ("is_superuser", "on", "The current user is a superuser."),
    ("lc_messages", "C", "Language of messages."),
    ("lc_monetary", "C", "Locale for money amounts."),
    ("lc_numeric", "C", "Locale for numbers."),
    ("lc_time", "C", "Locale for dates and times."),
    ("max_identifier_length", "127", "Maximum identifier length."),
    ("max_index_keys", "32", "Maximum number of index keys."),
    (
        "query_group",
        "default",
        "WLM query group label of following queries.",
    ),
    (
        "search_path",
        "$user, public",
        "Schema search order for names that are not schema-qualified.",
    ),
    ("server_encoding", "UTF8", "Server character set encoding."),
    ("server_version", crate::SERVER_VERSION, "Server version."),
    (
        "server_version_num",
        "150000",
        "Server version as an integer.",
    ),
    (
        "standard_conforming_strings",
        "on",
        "'...' strings treat backslashes literally.",
    ),
    (
        "statement_timeout",
        "0",
        "Maximum time any statement may run, in milliseconds (0 = none).",
    ),
    (
        "timezone",
        "UTC",
        "Time zone for displaying and interpreting time stamps.",
    ),
    (
        "transaction_isolation",
        "serializable",
        "Isolation level of the current transaction.",
    ),
    ("wlm_query_slot_count", "1", "WLM slots taken by a query."),
];

/// Names clients use for the same setting.
fn canonical(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.as_str() {
        "time zone" | "time_zone" => "timezone".into(),
        "transaction isolation level" | "transaction_isolation_level" => {
            "transaction_isolation".into()
        }
        "session_authorization" => "session_authorization".into(),
        _ => n,
    }
}

/// A session's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    pub fn new(user: &str) -> Self {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .map(|(k, v, _)| (k.to_string(), v.to_string()))
            .collect();
        values.insert("session_authorization".into(), user.into());
        values.insert("user".into(), user.into());
        Settings { values }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(&canonical(name)).map(|s| s.as_str())
    }

    /// SET name = value. Unknown names are accepted (clients send many), as Redshift does for
    /// most Postgres settings.
    pub fn set(&mut self, name: &str, value: &str) {
        let name = canonical(name);
        let value = match name.as_str() {
            "timezone"
                if value.eq_ignore_ascii_case("local") || value.eq_ignore_ascii_case("default") =>
            {
                "UTC".to_string()
            }
            _ => value.to_string(),
        };
        self.values.insert(name, value);
    }

    pub fn reset(&mut self, name: &str) {
        let name = canonical(name);
        match DEFAULTS.iter().find(|(k, _, _)| *k == name) {
            Some((_, v, _)) => {
                self.values.insert(name, v.to_string());
            }
            None => {
                self.values.remove(&name);
            }
        }
    }

    pub fn reset_all(&mut self) {
        let user = self.get("user").unwrap_or("basalt").to_string();
        *self = Settings::new(&user);
    }

    /// Every setting for SHOW ALL: (name, value, description).
    pub fn all(&self) -> Vec<(String, String, String)> {
        self.values
            .iter()
            .map(|(k, v)| {
                let desc = DEFAULTS
                    .iter()
                    .find(|(n, _, _)| n == k)
                    .map(|(_, _, d)| d.to_string())
                    .unwrap_or_default();
                (k.clone(), v.clone(), desc)
            })
            .collect()
    }

    /// Statement timeout in milliseconds, 0 for none.
    pub fn statement_timeout_ms(&self) -> u64 {
        let v = self
            .get("statement_timeout")
            .unwrap_or("0")
            .trim()
            .to_ascii_lowercase();
        let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
            (n.trim().to_string(), 1)
        } else if let Some(n) = v.strip_suffix("min") {
            (n.trim().to_string(), 60_000)
        } else if let Some(n) = v.strip_suffix('s') {
            (n.trim().to_string(), 1000)
        } else {
            (v.clone(), 1)
        };
        num.parse::<u64>().map(|n| n * mult).unwrap_or(0)
    }
}
