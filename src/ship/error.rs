//! How a delivery fails.

use std::fmt;

/// Why a delivery failed: a message for the user, or Ctrl-C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipError {
    Failed(String),
    Interrupted,
}

impl ShipError {
    pub(crate) fn failed(message: impl Into<String>) -> ShipError {
        ShipError::Failed(message.into())
    }
}

impl fmt::Display for ShipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShipError::Failed(m) => f.write_str(m),
            ShipError::Interrupted => f.write_str("interrupted"),
        }
    }
}
