//! The JSON API under `/api/v1/`: everything the pages do, for integrations (bearer
//! API tokens) and scripts. Access is decided by the same route table as the pages;
//! errors are `{"error": "..."}` with a 4xx/5xx status. [`openapi`] describes it.

pub mod account;
pub mod alerts;
pub mod audit;
pub mod hosts;
pub mod notifications;
pub mod openapi;
pub mod overview;
pub mod reports;
pub mod rules;
pub mod users;

use axum::Json;
use serde_json::Value;

use super::error::ConsoleError;

/// Result of an API handler.
pub type ApiResult = Result<Json<Value>, ConsoleError>;
