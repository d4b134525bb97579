//! The rules every row a projection returns is held to, whatever runs it
//! (a wasm instance or a projection compiled into the host): at most
//! `max_row_bytes`, and valid JSON.

use super::ApplyError;

/// `row` if it is valid JSON of at most `max_row_bytes`.
///
/// # Errors
/// [`ApplyError::RowTooLarge`] or [`ApplyError::InvalidRow`].
pub fn check_row(row: String, max_row_bytes: usize) -> Result<String, ApplyError> {
    if row.len() > max_row_bytes {
        return Err(ApplyError::RowTooLarge {
            size: row.len(),
            limit: max_row_bytes,
        });
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&row).map_err(|err| ApplyError::InvalidRow {
        reason: err.to_string(),
    })?;
    Ok(row)
}
