//! The OpenAPI 3.0 document at `/api/v1/openapi.json`, generated from the route table
//! so it always lists exactly the API routes that exist and the roles allowed on each.

use axum::Json;
use serde_json::{Map, Value, json};

use super::super::access::{Access, ROUTES, Verb};

/// Builds the document.
pub fn build() -> Value {
    let mut paths = Map::new();
    for spec in ROUTES.iter().filter(|r| r.is_api()) {
        let roles = match spec.access {
            Access::Public => "public".to_owned(),
            Access::SelfService | Access::AnyRole => "any role".to_owned(),
            Access::Roles(roles) => roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut parameters: Vec<Value> = spec
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        parameters.extend(
            spec.query
                .iter()
                .map(|name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } })),
        );
        let mut operation = json!({
            "summary": spec.summary,
            "description": format!("Roles: {roles}."),
            "parameters": parameters,
            "responses": {
                "200": { "description": "OK", "content": { "application/json": {} } },
                "400": { "description": "Invalid request", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                "401": { "description": "Not authenticated" },
                "403": { "description": "Role not allowed, CSRF or cross-origin refusal" },
            },
        });
        if spec.access == Access::Public {
            operation["security"] = json!([]);
        }
        if spec.verb == Verb::Post {
            operation["requestBody"] = json!({ "required": false, "content": { "application/json": { "schema": { "type": "object" } } } });
        }
        let path_item = paths
            .entry(spec.path.to_owned())
            .or_insert_with(|| json!({}));
        path_item[spec.verb.name()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Shaobing console API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON API of the Shaobing (哨兵) operator console. Authenticate with an API token \
                (Authorization: Bearer sbt_…, created under /account) or a browser session; state changes \
                with a session need the X-CSRF-Token header and a same-origin Origin. The audit log is read-only.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "sb_session" },
            },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "string" } }, "required": ["error"] },
            },
        },
        "paths": paths,
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let doc = build();
        let paths = doc["paths"].as_object().unwrap();
        let api_routes = ROUTES.iter().filter(|r| r.is_api()).count();
        let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(operations, api_routes);
        assert!(paths.keys().all(|p| p.starts_with("/api/v1/")));
        assert_eq!(
            doc["paths"]["/api/v1/audit"]["get"]["description"],
            "Roles: auditor."
        );
        assert!(doc["paths"]["/api/v1/audit"].get("delete").is_none());
        assert_eq!(
            doc["paths"]["/api/v1/alerts/{id}"]["get"]["parameters"][0]["name"],
            "id"
        );
    }
}
