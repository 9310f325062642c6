//! TLS for upstream calls: rustls with the standard web roots, plus an optional corporate CA file.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// ALPN offers HTTP/2 first: one multiplexed connection per upstream where it speaks it.
fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

fn web_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn build(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("failed to set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// The client configuration trusting the standard web roots.
pub fn default_client_config() -> Result<Arc<ClientConfig>, String> {
    build(web_roots())
}

/// The web roots plus `certs` (read from a `ca_file` by [`load_ca_file`]).
pub fn client_config_with_certs(
    certs: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = web_roots();
    for cert in certs {
        roots
            .add(cert.clone())
            .map_err(|e| format!("failed to add a CA certificate: {e}"))?;
    }
    build(roots)
}

/// The largest CA file read: a bundle of every public root is about 250 KB.
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// Reads the certificates of a PEM file; an error names the file and what is wrong.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| format!("failed to read CA file {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // A device or a pipe (/dev/zero, /dev/stdin) would block or never end.
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(format!("CA file {} is not a regular file", path.display()));
    }
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(unreadable)?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!(
            "CA file {} is larger than {MAX_CA_FILE_BYTES} bytes; it should hold a few PEM certificates",
            path.display()
        ));
    }
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("failed to parse CA file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}
