//! The admin API's OpenAPI 3.1 description, built from the route table
//! ([`super::routes::table`]): every route with its parameters, who may
//! call it (`x-roles`, and `x-actions` where roles differ per action),
//! its request and answer schemas where the route declares them (derived
//! from the body types with utoipa), and the one error shape every refusal
//! and failure has. Served at `/v1/openapi.json`; a copy is kept in
//! `protocol-spec/admin-api.openapi.json` and a test keeps the two equal.

use std::borrow::Cow;

use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::access::{Route, Rule, Shape};

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
            let name = add(&mut schemas, schema());
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } }
            });
        }
        if let Some((schema, shape)) = r.answer {
            let name = add(&mut schemas, schema());
            let one = json!({ "$ref": format!("#/components/schemas/{name}") });
            op["responses"]["200"]["content"]["application/json"]["schema"] = match shape {
                Shape::One => one,
                Shape::List => json!({ "type": "array", "items": one }),
                Shape::OrNull => json!({ "oneOf": [one, { "type": "null" }] }),
            };
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

/// Adds a type's schema and those it refers to (see
/// [`super::access::Schema`]) to `schemas`; returns the type's name. Each
/// name stands for one schema: a test checks that no two types the routes
/// declare share a name.
fn add(schemas: &mut Map<String, Value>, named: Vec<(String, Value)>) -> String {
    let name = named.first().map(|(n, _)| n.clone()).unwrap_or_default();
    for (n, s) in named {
        schemas.entry(n).or_insert(s);
    }
    name
}

/// The schema of the description itself, which `GET /v1/openapi.json`
/// answers: an OpenAPI 3.1 document. Only its top level is described here;
/// the OpenAPI Initiative publishes the schema of the rest.
pub struct Description;

impl utoipa::PartialSchema for Description {
    fn schema() -> RefOr<Schema> {
        let object = || ObjectBuilder::new().schema_type(Type::Object);
        let array = |of| ArrayBuilder::new().items(of);
        object()
            .description(Some("This OpenAPI 3.1 description of the admin API."))
            .property("openapi", ObjectBuilder::new().schema_type(Type::String))
            .required("openapi")
            .property("info", object())
            .required("info")
            .property("servers", array(object()))
            .property("security", array(object()))
            .property("paths", object())
            .required("paths")
            .property("components", object())
            .into()
    }
}

impl utoipa::ToSchema for Description {
    fn name() -> Cow<'static, str> {
        "OpenApiDescription".into()
    }
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
    if matches!(r.rule, Rule::SignIn) {
        op["security"] = json!([]);
        op["responses"]["401"] = error("Wrong name, password or code.");
        op["responses"]["429"] = error(
            "Too many sign-ins from this address, or too many wrong passwords for this name.",
        );
    } else if matches!(r.rule, Rule::Public) {
        op["security"] = json!([]);
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::routes::table;
    use super::*;

    #[test]
    fn no_two_declared_types_share_a_schema_name() {
        let mut seen: HashMap<String, Value> = HashMap::new();
        for r in table() {
            let declared = r.body.into_iter().chain(r.answer.map(|(s, _)| s));
            for (name, schema) in declared.flat_map(|s| s()) {
                let first = seen.entry(name.clone()).or_insert_with(|| schema.clone());
                assert_eq!(*first, schema, "two types are named {name}");
            }
        }
    }
}
