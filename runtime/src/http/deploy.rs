//! Live redeploy over the API (the operations are [`crate::deploy`]'s):
//!
//! - `POST /v1/views/{view}/deploy?swap=auto|manual&allow_partial_history=false`
//!   with the module as an `application/wasm` body (at most
//!   [`MAX_MODULE_BYTES`]): checked, then built as a shadow; 202 with the
//!   deployment, or a refusal that changed nothing (409, 422);
//! - `GET /v1/views/{view}/deploy`: the deployment and the shadow's
//!   progress;
//! - `POST .../deploy/cancel`, `.../swap`, `.../rollback`,
//!   `.../drop-previous`.
//!
//! Each runs off the async workers: a deploy compiles, a swap waits for the
//! incoming version to pass the live one.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ApiError, ApiState, bad_request};
use crate::deploy::{DeployError, DeployOptions, Deployer, DeploymentReport, Dropped, SwapMode};

/// The largest module a deploy accepts, in bytes: a Python component is
/// about 40 MB.
pub const MAX_MODULE_BYTES: usize = 256 * 1024 * 1024;

/// The query of a deploy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeployQuery {
    #[serde(default)]
    swap: Option<SwapMode>,
    #[serde(default)]
    allow_partial_history: bool,
}

/// The status and code of a deploy error.
pub(super) fn status_and_code(err: &DeployError) -> (StatusCode, &'static str) {
    match err {
        DeployError::UnknownView(_) => (StatusCode::NOT_FOUND, "unknown_view"),
        DeployError::NotAComponent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_projection"),
        DeployError::Busy { .. } => (StatusCode::CONFLICT, "deploy_under_way"),
        DeployError::SameModule { .. } => (StatusCode::CONFLICT, "same_module"),
        DeployError::Standby(_) => (StatusCode::CONFLICT, "standby"),
        DeployError::HistoryGone { .. } => (StatusCode::CONFLICT, "history_gone"),
        DeployError::NoShadow(_) => (StatusCode::CONFLICT, "no_shadow"),
        DeployError::NotCaughtUp { .. } => (StatusCode::CONFLICT, "not_caught_up"),
        DeployError::NoPrevious(_) => (StatusCode::CONFLICT, "no_previous"),
        DeployError::Kafka { .. } => (StatusCode::BAD_GATEWAY, "broker"),
        DeployError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
        DeployError::Start(_) => (StatusCode::INTERNAL_SERVER_ERROR, "start"),
    }
}

fn deployer(state: &ApiState) -> Result<Arc<Deployer>, ApiError> {
    state
        .deployer
        .clone()
        .ok_or_else(|| ApiError::NotReady("this server deploys no modules".to_owned()))
}

/// Run `operation` on the deployer for view `name`, off the async workers.
async fn run<T: Send + 'static>(
    state: &ApiState,
    name: String,
    operation: impl FnOnce(&Arc<Deployer>, &str) -> Result<T, DeployError> + Send + 'static,
) -> Result<T, ApiError> {
    super::owned(&state.slot(&name)?.live_view(), "deploys are made")?;
    let deployer = deployer(state)?;
    tokio::task::spawn_blocking(move || operation(&deployer, &name))
        .await
        .map_err(|err| ApiError::Internal(format!("the deploy task failed: {err}")))?
        .map_err(ApiError::from)
}

pub(super) async fn deploy(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeployQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<DeploymentReport>), ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    let Query(query) = query.map_err(bad_request)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "the module is larger than {MAX_MODULE_BYTES} bytes, the most a deploy takes"
            ))
        } else {
            ApiError::BadRequest(format!("the module could not be read: {rejection}"))
        }
    })?;
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body must be the module (Content-Type: application/wasm)".to_owned(),
        ));
    }
    let options = DeployOptions {
        swap: query.swap.unwrap_or(SwapMode::Auto),
        allow_partial_history: query.allow_partial_history,
    };
    let report = run(&state, name, move |deployer, name| {
        deployer.deploy(name, &body, options)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(report)))
}

pub(super) async fn status(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DeploymentReport>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    let slot = state.slot(&name)?;
    let settings = state.deployer.as_ref().map(|d| d.settings().clone());
    Ok(Json(crate::deploy::report(slot, settings.as_ref())))
}

pub(super) async fn cancel(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DeploymentReport>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    run(&state, name, |deployer, name| deployer.cancel(name))
        .await
        .map(Json)
}

pub(super) async fn swap(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DeploymentReport>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    run(&state, name, |deployer, name| deployer.swap(name))
        .await
        .map(Json)
}

pub(super) async fn rollback(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DeploymentReport>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    run(&state, name, |deployer, name| deployer.rollback(name))
        .await
        .map(Json)
}

pub(super) async fn drop_previous(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Dropped>, ApiError> {
    let Path(name) = path.map_err(bad_request)?;
    run(&state, name, |deployer, name| deployer.drop_previous(name))
        .await
        .map(Json)
}
