//! TLS: certificates in, a rustls `ServerConfig` out; and the start of a
//! session from the bytes the sniffer has already read.
//!
//! The server speaks TLS on the same port as plain TCP: a first byte
//! `0x16` (a TLS handshake record) makes `server` start a session here, and
//! everything above it (sniffing, lines, HTTP, WebSocket) runs unchanged
//! on the decrypted bytes. rustls is sans-I/O: the loop moves bytes
//! between the socket and the session (`server::stream`), so TLS needs no
//! thread and no blocking call.
//!
//! This module has no sockets: it reads PEM files, makes the self-signed
//! certificate of `--tls-self-signed`, builds the configuration (TLS 1.2
//! and 1.3, ALPN `http/1.1`, the `ring` provider) and starts sessions.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerConnection;
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

/// The ALPN protocol natter offers: HTTP/1.1 (WebSocket upgrades ride on it;
/// a line client offers none).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Unsent TLS output one session may buffer (rustls's own default): past
/// it the session takes no more plaintext until the socket takes some.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// A certificate chain and its key, ready to serve, with what the log says
/// about it.
pub struct Identity {
    /// The configuration new sessions start from.
    pub config: Arc<ServerConfig>,
    /// The leaf certificate's SHA-256 fingerprint, in hex with colons.
    pub fingerprint: String,
    /// The leaf certificate as PEM, when it was made here
    /// (`--tls-self-signed`: there is no file to point clients at).
    pub cert_pem: Option<String>,
}

/// Reads a PEM certificate chain (leaf first) and a PEM private key
/// (PKCS#8, PKCS#1 or SEC1), and builds the server configuration. Every
/// error names the file and what is wrong with it.
pub fn load(cert: &Path, key: &Path) -> Result<Identity, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    identity(chain, key_der, None)
        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))
}

/// A fresh self-signed certificate (and key) for `localhost`, 127.0.0.1,
/// ::1 and the given hosts (unspecified addresses are skipped).
pub fn self_signed(hosts: &[IpAddr]) -> Result<Identity, String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for ip in hosts {
        let name = ip.to_string();
        if !ip.is_unspecified() && !names.contains(&name) {
            names.push(name);
        }
    }
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| format!("the generated key: {e}"))?;
    let leaf = made.cert.der().clone();
    identity(vec![leaf], key, Some(made.cert.pem()))
}

/// The configuration itself: TLS 1.3 and 1.2 with `ring`'s cipher suites,
/// no client certificates, ALPN `http/1.1`. Fails if the key does not
/// match the certificate or is of a kind `ring` cannot sign with.
fn identity(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: Option<String>,
) -> Result<Identity, String> {
    let fingerprint = fingerprint(&chain[0]);
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        cert_pem,
    })
}

/// The crypto provider: `ring`, which builds here with the C compiler alone
/// (aws-lc-rs, rustls's default, wants CMake too). rustls 0.23.48 marks it
/// deprecated because it has no post-quantum key exchange (X25519MLKEM768);
/// X25519 and the NIST curves remain, as in TLS today.
///
/// Key exchange groups in the order X25519, P-256, P-384: the provider's
/// own list puts P-384 first, and a server picks the first group of its
/// list that the client sent a key share for. A P-384 handshake costs the
/// loop about four times an X25519 one (docs/BENCHMARKS.md, "TLS"), and
/// browsers and OpenSSL offer X25519 first anyway.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

/// SHA-256 of a certificate's DER, as `AB:CD:...` (what browsers show).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Bytes after a first `0x16` that are not TLS rustls accepts.
pub struct Refused {
    /// The session, if one was made: its alert (if it has one) should
    /// still go out before the connection closes.
    pub conn: Option<Box<ServerConnection>>,
    /// What rustls said.
    pub why: String,
}

/// Starts a server session with the bytes already read from the socket
/// (the sniffed ClientHello, or the start of it).
pub fn start(config: &Arc<ServerConfig>, first: &[u8]) -> Result<Box<ServerConnection>, Refused> {
    let mut conn = Box::new(ServerConnection::new(config.clone()).map_err(|e| Refused {
        conn: None,
        why: e.to_string(),
    })?);
    conn.set_buffer_limit(Some(BUFFER_LIMIT));
    let mut rest = first;
    while !rest.is_empty() {
        let step = match conn.read_tls(&mut rest) {
            Ok(0) => break,
            Ok(_) => conn
                .process_new_packets()
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = step {
            return Err(Refused {
                conn: Some(conn),
                why,
            });
        }
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A rustls client that trusts exactly `identity`'s certificate.
    fn client_for(identity: &Identity, name: &str) -> rustls::ClientConnection {
        let mut roots = rustls::RootCertStore::empty();
        let cert =
            CertificateDer::from_pem_slice(identity.cert_pem.as_ref().unwrap().as_bytes()).unwrap();
        roots.add(cert).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        rustls::ClientConnection::new(Arc::new(config), name).unwrap()
    }

    /// Moves bytes between a client and a server session until neither
    /// has anything to say.
    fn pump(client: &mut rustls::ClientConnection, server: &mut ServerConnection) {
        for _ in 0..20 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            let mut slice = &wire[..];
            while !slice.is_empty() {
                server.read_tls(&mut slice).unwrap();
                server.process_new_packets().unwrap();
            }
            let mut back = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut back).unwrap();
            }
            let mut slice = &back[..];
            while !slice.is_empty() {
                client.read_tls(&mut slice).unwrap();
                client.process_new_packets().unwrap();
            }
            if wire.is_empty() && back.is_empty() {
                return;
            }
        }
    }

    #[test]
    fn a_self_signed_certificate_serves_localhost_and_the_listen_hosts() {
        let host: IpAddr = "10.1.2.3".parse().unwrap();
        let id = self_signed(&[host, "0.0.0.0".parse().unwrap()]).unwrap();
        assert_eq!(id.fingerprint.len(), 32 * 3 - 1);
        for name in ["localhost", "127.0.0.1", "10.1.2.3"] {
            let mut client = client_for(&id, name);
            let first = {
                let mut wire = Vec::new();
                client.write_tls(&mut wire).unwrap();
                wire
            };
            assert_eq!(
                first[0], 0x16,
                "a ClientHello starts with a handshake record"
            );
            let mut server = start(&id.config, &first).unwrap_or_else(|e| panic!("{}", e.why));
            pump(&mut client, &mut server);
            assert!(!client.is_handshaking(), "{name}: handshake done");
            assert_eq!(server.alpn_protocol(), Some(ALPN_HTTP11));
            client.writer().write_all(b"hello\n").unwrap();
            pump(&mut client, &mut server);
            let mut got = [0u8; 16];
            let n = server.reader().read(&mut got).unwrap();
            assert_eq!(&got[..n], b"hello\n");
        }
        // A name the certificate does not carry is refused by the client.
        let mut client = client_for(&id, "example.com");
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        let mut server = start(&id.config, &wire).unwrap_or_else(|e| panic!("{}", e.why));
        let mut back = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut back).unwrap();
        }
        let mut slice = &back[..];
        client.read_tls(&mut slice).unwrap();
        assert!(client.process_new_packets().is_err());
    }

    #[test]
    fn x25519_comes_first_and_is_what_our_clients_get() {
        let names: Vec<_> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            names,
            [
                rustls::NamedGroup::X25519,
                rustls::NamedGroup::secp256r1,
                rustls::NamedGroup::secp384r1
            ]
        );
        let id = self_signed(&[]).unwrap();
        let mut client = client_for(&id, "localhost");
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        let mut server = start(&id.config, &wire).unwrap_or_else(|e| panic!("{}", e.why));
        pump(&mut client, &mut server);
        assert_eq!(
            server.negotiated_key_exchange_group().map(|g| g.name()),
            Some(rustls::NamedGroup::X25519)
        );
    }

    #[test]
    fn garbage_after_a_handshake_byte_is_an_error_not_a_panic() {
        let id = self_signed(&[]).unwrap();
        let Err(Refused { why, .. }) = start(&id.config, b"\x16\x03\x01\x00\x05hello") else {
            panic!("garbage accepted");
        };
        assert!(!why.is_empty());
        // A ClientHello whose body is cut short: rustls says why with an
        // alert, and the session is handed back so that it can go out.
        let Err(Refused { conn, .. }) =
            start(&id.config, b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00")
        else {
            panic!("a broken ClientHello accepted");
        };
        let mut conn = conn.expect("a session to send the alert");
        let mut alert = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut alert).unwrap();
        }
        assert_eq!(alert.first(), Some(&0x15), "an alert record");
    }

    #[test]
    fn a_truncated_client_hello_waits_for_the_rest() {
        let id = self_signed(&[]).unwrap();
        let mut client = client_for(&id, "localhost");
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        for cut in [1, 5, 6, wire.len() / 2, wire.len() - 1] {
            let server = start(&id.config, &wire[..cut]).unwrap_or_else(|e| panic!("{}", e.why));
            assert!(server.is_handshaking());
            assert!(!server.wants_write(), "{cut}: nothing to say yet");
        }
    }

    #[test]
    fn files_that_are_not_pem_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("natter-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let id = self_signed(&[]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, id.cert_pem.as_ref().unwrap()).unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let e = load(&cert, &key).err().expect("a bad key");
        assert!(e.contains("key.pem"), "{e}");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
        let e = load(&cert, &key).err().expect("a bad certificate");
        assert!(e.contains("cert.pem"), "{e}");
        std::fs::write(&cert, "").unwrap();
        let e = load(&cert, &key).err().expect("no certificate");
        assert!(e.contains("no certificate"), "{e}");
        // A key that is not the certificate's.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&cert, id.cert_pem.as_ref().unwrap()).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        assert!(load(&cert, &key).is_err(), "a key of another certificate");
        std::fs::write(&cert, other.cert.pem()).unwrap();
        let ok = load(&cert, &key).unwrap();
        assert_eq!(ok.fingerprint, fingerprint(other.cert.der()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
