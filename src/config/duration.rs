//! Durations in `rules.toml` are written the human way: `"500ms"`, `"5s"`,
//! `"2m"`, `"1h 30m"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `deserialize_with` helper for a required duration.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write e.g. \"5s\" or \"500ms\""
        ))
    })
}

/// `deserialize_with` helper for a duration where `"0s"` means "never".
pub fn deserialize_optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let value = deserialize(d)?;
    Ok((!value.is_zero()).then_some(value))
}
