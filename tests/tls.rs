//! TLS on the real binary: the admin API over HTTPS only, a terminal
//! listener over TLS, and a certificate replaced on disk taken up without a
//! restart.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clubswitch_wire::{decode, Mti, NetworkCode, ResponseCode};
use support::*;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// A self-signed certificate for 127.0.0.1 and localhost, written as
/// `name.crt` and `name.key` in `dir`; returns the certificate.
fn certificate(dir: &Path, name: &str) -> CertificateDer<'static> {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    // The key first: the switch takes a new pair once both are in place.
    std::fs::write(
        dir.join(format!("{name}.key")),
        made.key_pair.serialize_pem(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), made.cert.pem()).unwrap();
    made.cert.der().clone()
}

/// A client that trusts only `cert`.
fn client(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// `GET path` over TLS to `addr`, trusting only `cert`: the status line,
/// or the TLS error.
fn https_get(
    addr: &str,
    cert: &CertificateDer<'static>,
    token: &str,
    path: &str,
) -> Result<String, String> {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(client(cert), name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    if text.is_empty() {
        return Err("no answer".into());
    }
    Ok(text)
}

fn tls_config(dir: &Path, name: &str) -> String {
    format!(
        "{{ cert = {:?}, key = {:?} }}",
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key"))
    )
}

fn key_dir(name: &str) -> Scratch {
    Scratch::new(&format!("tls-keys-{name}"))
}

#[test]
fn the_admin_api_answers_over_https_only_and_takes_a_new_certificate_without_a_restart() {
    let keys = key_dir("admin");
    let first = certificate(&keys, "admin");
    let d = Daemon::start_configured(
        "tls-admin",
        &format!("[admin]\ntls = {}\n", tls_config(&keys, "admin")),
        &[],
    );
    let answer = https_get(&d.admin, &first, &d.token, "/v1/whoami").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"role\":\"admin\""), "{answer}");

    // Plain HTTP to the TLS port gets no API answer.
    let plain = ureq::get(&format!("http://{}/v1/whoami", d.admin))
        .set("Authorization", &format!("Bearer {}", d.token))
        .timeout(Duration::from_secs(5))
        .call();
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // A new certificate on disk is served within seconds; the old one is
    // no longer.
    let second = certificate(&keys, "admin");
    let start = Instant::now();
    loop {
        if https_get(&d.admin, &second, &d.token, "/v1/whoami")
            .is_ok_and(|a| a.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the new certificate was not taken up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(https_get(&d.admin, &first, &d.token, "/v1/whoami").is_err());

    // A broken pair is refused; the last good one goes on serving.
    std::fs::write(keys.join("admin.crt"), "not a certificate").unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let still = https_get(&d.admin, &second, &d.token, "/v1/whoami").unwrap();
    assert!(still.starts_with("HTTP/1.1 200"), "{still}");
}

#[test]
fn a_switch_whose_certificate_cannot_be_read_does_not_start() {
    let keys = key_dir("missing");
    let dir = Scratch::new("tls-missing");
    Daemon::prepare(
        &dir,
        "",
        &format!("[admin]\ntls = {}\n", tls_config(&keys, "absent")),
    );
    let err = Daemon::try_start_in_env(dir.to_path_buf(), &[], &[])
        .err()
        .expect("started without its certificate");
    assert!(err.contains("TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_talks_to_a_tls_listener() {
    let keys = key_dir("terminal");
    let cert = certificate(&keys, "terminal");
    let d = Daemon::start_configured(
        "tls-terminal",
        &format!(
            "[[listeners]]\naddr = \"127.0.0.1:0\"\ntls = {}\n",
            tls_config(&keys, "terminal")
        ),
        &[],
    );
    let tls_listener = &d.listeners[1];
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tcp = tokio::net::TcpStream::connect(tls_listener).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(client(&cert))
        .connect(name, tcp)
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut t = d.terminal("TERM0001");
    for _ in 0..3 {
        let mut m = t.request(Mti::NETWORK_REQUEST, 0);
        m.set_network_code(NetworkCode::Echo);
        let raw = t.sign(&mut m);
        tls.write_all(&framed(&raw)).await.unwrap();
        let mut len = [0u8; 2];
        tls.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        tls.read_exact(&mut body).await.unwrap();
        let answer = decode(&Bytes::from(body)).unwrap();
        assert_eq!(answer.response_code().unwrap(), ResponseCode::Approved);
    }
    // The plain listener still serves alongside it.
    let mut conn = d.connect().await;
    let mut m = t.request(Mti::NETWORK_REQUEST, 0);
    m.set_network_code(NetworkCode::Echo);
    let raw = t.sign(&mut m);
    let (_, answer) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(answer.response_code().unwrap(), ResponseCode::Approved);
}
