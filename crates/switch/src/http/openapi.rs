//! The admin API's OpenAPI 3.1 description, built from the route table
//! ([`super::routes::table`]): every route with its parameters, who may
//! call it (`x-roles`, and `x-actions` where roles differ per action),
//! its request and answer schemas where the route declares them (derived
//! from the body types with utoipa), and the one error shape every refusal
//! and failure has. Served at `/v1/openapi.json`; a copy is kept in
//! `protocol-spec/admin-api.openapi.json` and a test keeps the two equal.

use serde_json::{json, Map, Value};

use super::access::{Route, Rule};

/// The OpenAPI document of `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": { "error": { "type": "string", "description": "What was wrong, in words." } }
        }),
    );
    for r in routes.iter().filter(|r| !r.page) {
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        let mut op = operation(r);
        if let Some(schema) = r.body {
            let (name, s) = schema();
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } }
            });
            schemas.insert(name, s);
        }
        if let Some(schema) = r.answer {
            let (name, s) = schema();
            let one = json!({ "$ref": format!("#/components/schemas/{name}") });
            op["responses"]["200"]["content"]["application/json"]["schema"] = if r.answer_list {
                json!({ "type": "array", "items": one })
            } else {
                one
            };
            schemas.insert(name, s);
        }
        item[r.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "clubswitch admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Operators, merchants, cashiers and members of a clubswitch loyalty switch. \
                Authenticate with a bearer token (`clubswitch admin user add`) or a session cookie \
                from `POST /v1/login`; a session's requests other than GET carry its CSRF token in \
                `X-CSRF-Token`. A role that may not call a route gets 403; a merchant's or member's \
                credential asking for another's object gets 404. Card numbers appear only masked."
        },
        "servers": [{ "url": "http://127.0.0.1:5859" }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": super::access::SESSION_COOKIE }
            }
        }
    })
}

/// A route's operation: id, summary, roles, parameters and responses.
fn operation(r: &Route) -> Value {
    let method = r.method.as_str().to_ascii_lowercase();
    let id = format!(
        "{method}{}",
        r.path
            .split('/')
            .filter(|s| !s.is_empty() && *s != "v1")
            .map(|s| {
                let s = s.trim_matches(|c| c == '{' || c == '}').replace('-', "_");
                let mut c = s.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<String>()
    );
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "schema": { "type": "string", "minLength": 1, "maxLength": 128 }
            })
        })
        .collect();
    if matches!(r.rule, Rule::Gateway) {
        for (name, what, pattern) in [
            (
                "X-Clubswitch-Timestamp",
                "Unix seconds, within the gateway's window of the switch's clock.",
                "^[0-9]{1,12}$",
            ),
            (
                "X-Clubswitch-Signature",
                "Hex of HMAC-SHA256(the gateway's secret, timestamp ‖ \".\" ‖ body).",
                "^[0-9a-fA-F]{64}$",
            ),
        ] {
            params.push(json!({
                "name": name, "in": "header", "required": true, "description": what,
                "schema": { "type": "string", "pattern": pattern }
            }));
        }
    }
    if r.keyed {
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Names this money move: a repeat with the same key and body answers \
                as the first and moves nothing; the same key with another body is refused \
                (422). Keys are kept at least 24 hours, per caller.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }
        }));
    }
    let view = r.rule_view();
    let error = |what: &str| {
        json!({
            "description": what,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    let mut responses = json!({
        "200": { "description": "Done; the answer as JSON (a CSV where `?format=csv` asks for one)." },
        "400": error("The request is malformed or a value is out of range."),
        "404": error("No such object (or, for a merchant or member, not one of its own)."),
        "409": error("It exists already."),
        "413": error("The body is larger than 4 MiB."),
        "415": error("The body is not JSON."),
        "422": error("The body lacks a field or has one of the wrong type, or the Idempotency-Key was used for another request."),
        "429": error("Too many requests from this credential (or failed sign-ins from this address)."),
        "500": error("The switch failed at something of its own (a file, the ledger)."),
        "503": error("The ledger cannot take writes now."),
    });
    let mut op = json!({
        "operationId": id,
        "summary": r.summary,
        "x-roles": view["roles"],
        "parameters": params,
        "responses": responses.take(),
    });
    if matches!(r.rule, Rule::Public) {
        op["security"] = json!([]);
        op["responses"]["401"] = error("Wrong name, password or code.");
    } else if matches!(r.rule, Rule::Gateway) {
        op["security"] = json!([]);
        op["responses"]["401"] =
            error("Unknown gateway, a missing or wrong signature, or a stale timestamp.");
    } else {
        op["responses"]["401"] = error("No valid credential.");
        op["responses"]["403"] =
            error("The caller's role may not do this, or a session's CSRF token is missing.");
    }
    if let Some(actions) = view.get("actions") {
        op["x-actions"] = actions.clone();
    }
    op
}
