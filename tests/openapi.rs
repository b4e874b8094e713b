//! The admin API's OpenAPI description: the copy in `protocol-spec/` is
//! what the switch serves and what `clubswitch openapi` prints, and a
//! property-based tester (schemathesis) driven by it against the running
//! switch finds no server error and no answer outside the description.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::*;

fn spec_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol-spec/admin-api.openapi.json")
}

#[test]
fn the_published_description_is_the_one_the_switch_serves() {
    let printed = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(printed.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec_file()).unwrap()).unwrap();
    assert_eq!(
        printed, kept,
        "protocol-spec/admin-api.openapi.json is stale: clubswitch openapi > protocol-spec/admin-api.openapi.json"
    );
    let d = Daemon::start("openapi-served", &[]);
    let served: serde_json::Value = ureq::get(&format!("http://{}/v1/openapi.json", d.admin))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(served, kept);
    // Every API route the switch serves is described, with its roles; the
    // console's pages (HTML, marked `page`) are not part of the API.
    let access = d.admin("GET", "/v1/access", None).unwrap();
    let (pages, api): (Vec<_>, Vec<_>) = access
        .as_array()
        .unwrap()
        .iter()
        .partition(|r| r["page"] == true);
    assert!(!pages.is_empty() && !api.is_empty());
    for r in &pages {
        let p = r["path"].as_str().unwrap();
        assert!(!p.starts_with("/v1/"), "{p} is marked a page");
        assert!(
            kept["paths"][p].is_null(),
            "page {p} is in the API description"
        );
    }
    for r in api {
        let (m, p) = (
            r["method"].as_str().unwrap().to_ascii_lowercase(),
            r["path"].as_str().unwrap(),
        );
        let op = &kept["paths"][p][&m];
        assert!(op.is_object(), "{m} {p} is not described");
        assert_eq!(op["x-roles"], r["roles"], "{m} {p}");
    }
}

/// Every operation's 200 answer declares a JSON schema, so a client
/// generated from the description knows what each route answers; and every
/// schema a route refers to is in the document.
#[test]
fn every_json_route_declares_its_answer_schema() {
    let printed = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(printed.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    let mut undeclared = Vec::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
            if !schema.is_object() {
                undeclared.push(format!("{method} {path}"));
            }
        }
    }
    assert!(operations >= 60, "{operations} operations");
    assert!(
        undeclared.is_empty(),
        "routes whose 200 answer has no schema: {undeclared:?}"
    );
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referred to, not described"
        );
    }
}

/// The schemathesis program: `CLUBSWITCH_SCHEMATHESIS`, or on the PATH.
fn schemathesis() -> Option<String> {
    let st = std::env::var("CLUBSWITCH_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    if Command::new(&st)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(st);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the API property test: set CLUBSWITCH_SCHEMATHESIS (.ci/run installs it)"
    );
    eprintln!("skipping: no schemathesis (set CLUBSWITCH_SCHEMATHESIS; .ci/run installs it)");
    None
}

#[test]
fn generated_requests_to_every_route_get_no_server_error_and_answers_as_described() {
    let Some(st) = schemathesis() else { return };
    // Generated requests come fast and many from one credential.
    let d = Daemon::start_configured("openapi-fuzz", "[admin]\nrequests_per_sec = 1000000\n", &[]);
    let out = Command::new(&st)
        .args(["run", &format!("http://{}/v1/openapi.json", d.admin)])
        .args([
            "--experimental=openapi-3.1",
            "--generation-with-security-parameters=false",
        ])
        .args(["-H", &format!("Authorization: Bearer {}", d.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args([
            "--hypothesis-max-examples",
            "60",
            "--hypothesis-seed",
            "20261202",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
    let summary: Vec<&str> = text.lines().filter(|l| l.contains(" passed")).collect();
    eprintln!("{}", summary.join("\n"));
    // The switch is whole after it all.
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], serde_json::json!([]), "{audit}");
}
