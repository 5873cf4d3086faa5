//! Writes operator actions to the store's append-only audit log: who (account), when,
//! what (action + target + details) and from where (client address). The console has
//! no route that edits or deletes audit entries.

use serde_json::{Value, json};

use super::context::Ctx;
use super::error::ConsoleResult;
use super::state::ConsoleState;
use crate::store::AuditEntry;

/// Appends one entry; `detail` is merged with the client address.
pub async fn record(
    state: &ConsoleState,
    ctx: &Ctx,
    action: &str,
    target: &str,
    detail: Value,
) -> ConsoleResult<()> {
    record_as(state, &ctx.actor(), &ctx.client_ip, action, target, detail).await
}

/// Appends one entry for an explicit actor (e.g. a login attempt for a user name).
pub async fn record_as(
    state: &ConsoleState,
    actor: &str,
    client_ip: &str,
    action: &str,
    target: &str,
    detail: Value,
) -> ConsoleResult<()> {
    let mut detail = match detail {
        Value::Object(map) => map,
        Value::Null => serde_json::Map::new(),
        other => {
            let mut map = serde_json::Map::new();
            map.insert("detail".to_owned(), other);
            map
        }
    };
    detail.insert("from".to_owned(), json!(client_ip));
    let entry = AuditEntry {
        time_unix_nano: shaobing_wire::now_unix_nano(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: Value::Object(detail).to_string(),
    };
    if let Err(error) = state.store.append_audit(&entry).await {
        tracing::error!(%error, action, actor, "audit log write failed");
        return Err(error.into());
    }
    Ok(())
}
