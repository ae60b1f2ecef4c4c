//! One rustls client setup for every kind that speaks TLS itself (`tls`,
//! `postgres`, `redis`): the ring provider, trust anchors from a CA file or
//! the system store, and the libpq-style relaxations (`require`, `verify-ca`).

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// A client config that checks the server's certificate as `mode` says,
/// trusting `ca_file` (PEM) when given, else the system store. The error is
/// a readable reason (unreadable CA file, no roots).
pub fn connector_config(
    mode: VerifyMode,
    ca_file: Option<&str>,
) -> Result<Arc<ClientConfig>, String> {
    Ok(client_config(Arc::new(Verifier::new(
        mode, ca_file, false,
    )?)))
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// Encrypt only (libpq `require`): any certificate is accepted.
    None,
    /// The chain must lead to a trusted root; the name is not checked (`verify-ca`).
    Chain,
    /// Chain and name (`verify-full`, HTTPS rules).
    Full,
}

/// A certificate verifier that can relax the checks per [`VerifyMode`], or
/// (`record_only`) let the handshake finish and keep the verdict, so the `tls`
/// check can still report an expired certificate's facts.
#[derive(Debug)]
pub struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    record_only: bool,
    seen: Mutex<Option<rustls::Error>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// Builds a verifier; the error is a readable reason (bad CA file, no roots).
    pub fn new(mode: VerifyMode, ca_file: Option<&str>, record_only: bool) -> Result<Self, String> {
        let chain = match mode {
            VerifyMode::None => None,
            VerifyMode::Chain | VerifyMode::Full => {
                let roots = root_store(ca_file)?;
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|err| format!("cannot build the certificate verifier: {err}"))?;
                Some(verifier)
            }
        };
        Ok(Verifier {
            chain,
            check_name: mode == VerifyMode::Full,
            record_only,
            seen: Mutex::new(None),
            algorithms: provider().signature_verification_algorithms,
        })
    }

    /// The verification error seen during the handshake, if any (record-only mode).
    pub fn take_error(&self) -> Option<rustls::Error> {
        self.seen.lock().ok().and_then(|mut seen| seen.take())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(err) if self.record_only => {
                if let Ok(mut seen) = self.seen.lock() {
                    *seen = Some(err);
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Signatures are always checked: without them "encrypted" would mean
        // nothing even in `require` mode.
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The ring provider, explicitly: reqwest's clients are handed configs built
/// on it too, so nothing depends on a process-wide default provider.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    // ring is deprecated since rustls 0.23.48 for lacking post-quantum key
    // exchange; a probe's handshake secures nothing long-lived, and ring
    // spares every build the C toolchain aws-lc-rs needs.
    #[allow(deprecated)]
    let make = || Arc::new(rustls::crypto::ring::default_provider());
    PROVIDER.get_or_init(make).clone()
}

/// A client config around `verifier` with safe protocol defaults.
pub fn client_config(verifier: Arc<Verifier>) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

/// The HTTP clients' TLS config: HTTPS rules against the system roots
/// (`verify`), or any certificate with its signatures still checked (not),
/// offering h2 and http/1.1.
pub fn http_client_config(verify: bool) -> ClientConfig {
    let mode = if verify {
        VerifyMode::Full
    } else {
        VerifyMode::None
    };
    let mut config = match Verifier::new(mode, None, false) {
        Ok(verifier) => (*client_config(Arc::new(verifier))).clone(),
        // No system roots: every HTTPS check then fails with an unknown-issuer
        // reason instead of the whole run refusing to start.
        Err(_) => ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// Trust anchors: the CA file when given, else the system store (loaded once).
fn root_store(ca_file: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|err| format!("cannot read CA file {path}: {err}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| format!("cannot parse CA file {path}: {err}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("CA file {path} holds no usable certificate"));
            }
        }
        None => {
            static SYSTEM: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
            let certs = SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs);
            roots.add_parsable_certificates(certs.iter().cloned());
            if roots.is_empty() {
                return Err(
                    "no trusted root certificates found on this system (set `ca_file`)".to_string(),
                );
            }
        }
    }
    Ok(roots)
}

/// Finds a rustls error inside an I/O error (how tokio-rustls reports them).
pub fn rustls_error(err: &std::io::Error) -> Option<&rustls::Error> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_problem_is_a_readable_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let missing = missing.to_str().unwrap();
        let err = connector_config(VerifyMode::Full, Some(missing)).unwrap_err();
        assert!(err.starts_with("cannot read CA file"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = connector_config(VerifyMode::Chain, Some(empty.to_str().unwrap())).unwrap_err();
        assert!(err.contains("holds no usable certificate"), "{err}");
        // Encrypt-only needs no trust anchors at all.
        assert!(connector_config(VerifyMode::None, Some(missing)).is_ok());
    }
}
