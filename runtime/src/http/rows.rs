//! Reading rows: one row by subject (with `ETag` and `If-None-Match`), and
//! pages of rows in subject order, by prefix or by a secondary index.
//!
//! Pages are cursor-based: `next` is the last subject of the page, passed
//! back as `after`. A page is read in one pass over the store's ordered
//! keys, so paging while rows are inserted never repeats or skips a row that
//! existed for the whole walk.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{ApiError, ApiState, bad_request};
use crate::store::{StoredRow, ViewStore};

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted; a larger one is refused, not cut.
pub const MAX_LIMIT: usize = 1_000;

/// The query of a point read (and of a watch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadQuery {
    pub(super) min_offsets: Option<String>,
    pub(super) timeout_ms: Option<u64>,
}

/// The query of a page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    prefix: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    index: Option<String>,
    eq: Option<String>,
    min_offsets: Option<String>,
    timeout_ms: Option<u64>,
}

/// One row in a page.
#[derive(Debug, Serialize, Deserialize)]
pub struct RowEntry {
    /// The row's subject.
    pub subject: String,
    /// Its version: 1 when created, one more per change.
    pub version: u64,
    /// The row itself.
    pub row: Box<RawValue>,
}

/// A page of rows.
#[derive(Debug, Serialize, Deserialize)]
pub struct RowsPage {
    /// The rows, in subject order.
    pub rows: Vec<RowEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A stored row's JSON as a raw value. The engine admitted only valid JSON,
/// so a failure here means the store is damaged.
pub(super) fn raw(subject: &str, row: &StoredRow) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(row.json.clone()).map_err(|err| {
        ApiError::Internal(format!(
            "the stored row of subject {subject:?} is not JSON: {err}"
        ))
    })
}

/// The row's entity tag: its version and a digest of its content, so that
/// a row deleted and created again never matches an old tag.
fn etag(row: &StoredRow) -> String {
    let digest = Sha256::digest(row.json.as_bytes());
    format!("\"{}-{}\"", row.version, hex::encode(&digest[..8]))
}

fn matches_if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

pub(super) async fn get(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((view_name, subject)) = path.map_err(bad_request)?;
    let Query(query) = query.map_err(bad_request)?;
    let view = state
        .read_view(&view_name, query.min_offsets.as_deref(), query.timeout_ms)
        .await?;
    let Some(row) = view.rows.row(&subject)? else {
        return Err(ApiError::NoRow {
            view: view_name,
            subject,
        });
    };
    let tag = etag(&row);
    let tag_header = HeaderValue::from_str(&tag)
        .map_err(|err| ApiError::Internal(format!("cannot build the ETag: {err}")))?;
    if matches_if_none_match(&headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag_header)]).into_response());
    }
    let mut response = (
        [
            (header::ETAG, tag_header),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static("projector-row-version"),
                HeaderValue::from(row.version),
            ),
        ],
        row.json,
    )
        .into_response();
    super::mark_standby(&view, &mut response);
    Ok(response)
}

/// What a page request asks for, validated.
enum Selection {
    Prefix(String),
    Index { name: String, value: String },
}

fn select(query: &ListQuery, indexes: &[String]) -> Result<(Selection, usize), ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range: ask for 1 to {MAX_LIMIT} rows and follow `next`"
        )));
    }
    let selection = match (&query.index, &query.eq) {
        (None, None) => Selection::Prefix(query.prefix.clone().unwrap_or_default()),
        (Some(_), None) | (None, Some(_)) => {
            return Err(ApiError::BadRequest(
                "index and eq go together: ?index=NAME&eq=VALUE".to_owned(),
            ));
        }
        (Some(name), Some(value)) => {
            if query.prefix.is_some() {
                return Err(ApiError::BadRequest(
                    "prefix cannot be combined with an index lookup".to_owned(),
                ));
            }
            if !indexes.contains(name) {
                let known = if indexes.is_empty() {
                    "it has none".to_owned()
                } else {
                    format!("it has {}", indexes.join(", "))
                };
                return Err(ApiError::BadRequest(format!(
                    "the view has no index {name:?} ({known})"
                )));
            }
            Selection::Index {
                name: name.clone(),
                value: value.clone(),
            }
        }
    };
    Ok((selection, limit))
}

pub(super) async fn list(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(view_name) = path.map_err(bad_request)?;
    let Query(query) = query.map_err(bad_request)?;
    let (selection, limit) = select(&query, &state.serving_view(&view_name)?.info.indexes)?;
    let view = state
        .read_view(&view_name, query.min_offsets.as_deref(), query.timeout_ms)
        .await?;
    let rows = view.rows.clone();
    let after = query.after;
    // Up to a thousand rows: read them off the async workers.
    let mut found = tokio::task::spawn_blocking(move || match selection {
        Selection::Prefix(prefix) => rows.scan(&prefix, after.as_deref(), limit + 1),
        Selection::Index { name, value } => rows.lookup(&name, &value, after.as_deref(), limit + 1),
    })
    .await
    .map_err(|err| ApiError::Internal(format!("the read task failed: {err}")))??;
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|(subject, _)| subject.clone())
    } else {
        None
    };
    let rows = found
        .into_iter()
        .map(|(subject, row)| {
            Ok(RowEntry {
                row: raw(&subject, &row)?,
                version: row.version,
                subject,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let mut response = Json(RowsPage { rows, next }).into_response();
    super::mark_standby(&view, &mut response);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str, version: u64) -> StoredRow {
        StoredRow {
            json: json.to_owned(),
            version,
            last_event_id: "e".to_owned(),
        }
    }

    #[test]
    fn etags_change_with_version_and_content() {
        assert_ne!(etag(&row("{}", 1)), etag(&row("{}", 2)));
        assert_ne!(etag(&row(r#"{"a":1}"#, 1)), etag(&row(r#"{"a":2}"#, 1)));
        assert_eq!(etag(&row("{}", 3)), etag(&row("{}", 3)));
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = etag(&row("{}", 1));
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(matches_if_none_match(&headers(&tag), &tag));
        assert!(matches_if_none_match(
            &headers(&format!("\"x\", W/{tag}")),
            &tag
        ));
        assert!(matches_if_none_match(&headers("*"), &tag));
        assert!(!matches_if_none_match(&headers("\"1-00\""), &tag));
        assert!(!matches_if_none_match(&HeaderMap::new(), &tag));
    }
}
