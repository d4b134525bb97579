//! A view's quarantine (`on_error = "quarantine"`): the subjects it holds,
//! and releasing them.
//!
//! - `GET /v1/views/{view}/quarantine`: each subject held, with how many
//!   records wait and why the first one failed (at most
//!   [`MAX_SUBJECTS`] subjects; `truncated` says when there are more).
//! - `POST /v1/views/{view}/quarantine/release[?subject=S]`: the view's
//!   worker applies the held records of `S` (of every subject without it)
//!   in order with the current module, and answers what it did.
//! - `POST /v1/views/{view}/quarantine/discard?subject=S`: the view's
//!   worker takes `S`'s held records out of the quarantine, to its
//!   dead-letter topic when it has one, else dropped (`subject=` names the
//!   records that had no subject).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, bad_request};
use crate::config::OnError;
use crate::pipeline::control::{ControlError, Controls, ReleaseReport, SubjectDiscard};
use crate::service::RunningView;
use crate::store::ViewStore;

/// The most subjects one answer lists.
pub const MAX_SUBJECTS: usize = 1000;

/// One subject held.
#[derive(Debug, Serialize, Deserialize)]
pub struct HeldSubject {
    /// The subject (empty: records that had none).
    pub subject: String,
    /// Records held for it.
    pub records: u64,
    /// Where the first one came from: topic, partition, offset.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Why it failed.
    pub class: String,
    /// What failed.
    pub message: String,
}

/// The body of `GET /v1/views/{view}/quarantine`.
#[derive(Debug, Serialize, Deserialize)]
pub struct QuarantineReport {
    /// Subjects held.
    pub subjects: u64,
    /// Records held, over every subject.
    pub records: u64,
    /// The subjects, in order, at most [`MAX_SUBJECTS`].
    pub held: Vec<HeldSubject>,
    /// True when more subjects are held than listed.
    pub truncated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReleaseQuery {
    subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiscardQuery {
    subject: String,
}

fn quarantining(state: &ApiState, name: &str) -> Result<Arc<RunningView>, ApiError> {
    let view = state.view(name)?;
    if view.info.on_error != OnError::Quarantine {
        return Err(ApiError::BadRequest(format!(
            "view {name} does not quarantine: its on_error is {:?}; set on_error = \"quarantine\"",
            view.info.on_error
        )));
    }
    Ok(view)
}

pub(super) async fn list(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<QuarantineReport>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    let view = quarantining(&state, &name)?;
    let rows = view.rows.clone();
    // Without the records' bodies: a listing never holds them in memory.
    let held = tokio::task::spawn_blocking(move || rows.quarantine_summaries())
        .await
        .map_err(|err| ApiError::Internal(format!("the read task failed: {err}")))??;
    let (subjects, records) = view.status.quarantined();
    let mut listed: Vec<HeldSubject> = Vec::new();
    let mut truncated = false;
    for held in held {
        if let Some(last) = listed.last_mut()
            && last.subject == held.subject
        {
            last.records += 1;
            continue;
        }
        if listed.len() == MAX_SUBJECTS {
            truncated = true;
            break;
        }
        listed.push(HeldSubject {
            subject: held.subject,
            records: 1,
            topic: held.origin.topic,
            partition: held.origin.partition,
            offset: held.origin.offset,
            class: held.class,
            message: held.message,
        });
    }
    Ok(Json(QuarantineReport {
        subjects,
        records,
        held: listed,
        truncated,
    }))
}

pub(super) async fn release(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReleaseQuery>, QueryRejection>,
) -> Result<Json<ReleaseReport>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    let Query(query) = query.map_err(bad_request)?;
    let controls = controls_of(&state, &name)?;
    match controls.release(query.subject.clone()).await {
        // The worker releases only what it holds: a subject it does not
        // hold comes back with nothing done.
        Ok(report) if report.subjects.is_empty() && query.subject.is_some() => {
            Err(ApiError::NotQuarantined {
                view: name,
                subject: query.subject.unwrap_or_default(),
            })
        }
        Ok(report) => Ok(Json(report)),
        Err(err) => Err(control_error(&name, err)),
    }
}

pub(super) async fn discard(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DiscardQuery>, QueryRejection>,
) -> Result<Json<SubjectDiscard>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    let Query(query) = query.map_err(bad_request)?;
    let controls = controls_of(&state, &name)?;
    match controls.discard(query.subject.clone()).await {
        Ok(Some(report)) => Ok(Json(report)),
        Ok(None) => Err(ApiError::NotQuarantined {
            view: name,
            subject: query.subject,
        }),
        Err(err) => Err(control_error(&name, err)),
    }
}

/// The request queue of the quarantining view `name`'s worker.
fn controls_of(state: &ApiState, name: &str) -> Result<Controls, ApiError> {
    super::owned(
        state.view(name)?.as_ref(),
        "release or discard quarantined records",
    )?;
    quarantining(state, name)?
        .controls
        .clone()
        .ok_or_else(|| ApiError::NotReady(format!("view {name} takes no requests here")))
}

fn control_error(view: &str, err: ControlError) -> ApiError {
    match err {
        ControlError::Stopped => ApiError::NotReady(format!(
            "view {view} is not running; its held records are kept for the next start"
        )),
        ControlError::Busy => ApiError::Busy(err.to_string()),
        ControlError::Refused(reason) => ApiError::Internal(reason),
    }
}
