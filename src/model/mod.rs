//! Request and response types shared by the REST API, the server functions, the console and the CLI.
//! One definition each; the server maps its database rows into these.

use serde::{Deserialize, Serialize};

mod access;
mod audit;
mod clusters;
mod credentials;
mod directory;
mod providers;
mod settings;

pub use access::*;
pub use audit::*;
pub use clusters::*;
pub use credentials::*;
pub use directory::*;
pub use providers::*;
pub use settings::*;

/// Milliseconds since the Unix epoch. Every timestamp the product stores or sends is one of these.
pub type Millis = i64;

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u64,
    pub limit: u64,
    pub total: u64,
}

impl<T> Page<T> {
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.limit.max(1)).max(1)
    }
}

/// Who is signed in, as the console sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub can_view: bool,
    pub must_change_password: bool,
}

/// The JSON body of every API error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl ApiError {
    /// The error as one sentence for a person: the first field's problem ("new password is too short"),
    /// else the message.
    pub fn sentence(&self) -> String {
        match self.fields.first() {
            Some(f) => format!("{} {}", f.field.replace('_', " "), f.message),
            None => self.message.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Data together with the server's clock when it was read, so that relative times ("3 minutes ago")
/// render the same on the server and in the browser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithNow<T> {
    pub now: Millis,
    pub data: T,
}

/// "1 hour", "30 days", "90 seconds".
pub fn human_duration(s: u64) -> String {
    let (n, unit) = if s.is_multiple_of(86_400) && s >= 86_400 {
        (s / 86_400, "day")
    } else if s.is_multiple_of(3600) && s >= 3600 {
        (s / 3600, "hour")
    } else if s.is_multiple_of(60) && s >= 60 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_in_the_largest_whole_unit() {
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(90), "90 seconds");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3600), "1 hour");
        assert_eq!(human_duration(5400), "90 minutes");
        assert_eq!(human_duration(86_400 * 30), "30 days");
        assert_eq!(human_duration(0), "0 seconds");
    }
}
