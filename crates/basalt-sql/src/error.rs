/// Errors from parsing SQL text.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Syntax error; `position` is the 1-based character offset in the query text, as
    /// Postgres reports it.
    #[error("syntax error: {message}")]
    Syntax {
        message: String,
        position: Option<usize>,
    },
    #[error("{feature} is not supported")]
    Unsupported { feature: String },
}

impl SqlError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SqlError::Syntax { .. } => "42601",
            SqlError::Unsupported { .. } => "0A000",
        }
    }

    pub fn position(&self) -> Option<usize> {
        match self {
            SqlError::Syntax { position, .. } => *position,
            SqlError::Unsupported { .. } => None,
        }
    }
}
