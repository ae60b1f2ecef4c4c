//! Signing the seal: [`SealSigner`] turns `--sign-key PATH` into an SSHSIG
//! signature over the exact bytes of `seal.json` (namespace
//! [`SIGNATURE_NAMESPACE`]), written as `seal.json.sig`, which stock OpenSSH
//! checks with `ssh-keygen -Y verify`.
//!
//! PATH is either an unencrypted OpenSSH ed25519 private key, or an ed25519
//! public key whose private half is held by `ssh-agent` (reached through
//! `SSH_AUTH_SOCK`), as git's `user.signingKey` works. The agent protocol
//! needed is two requests (list identities, sign), spoken here directly.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, Signature, SshSig};

/// The SSHSIG namespace of a seal signature: a signature made for any other
/// purpose (git commits, files) is never accepted as a seal's.
pub const SIGNATURE_NAMESPACE: &str = "runproof-seal";
/// The signature's file name, beside `seal.json`.
pub const SIGNATURE_FILE: &str = "seal.json.sig";

/// Why a signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("--sign-key {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--sign-key {}: neither an OpenSSH private key nor a public key", .path.display())]
    NotAKey { path: PathBuf },
    #[error("--sign-key {}: a {algorithm} key; runproof signs with ed25519 keys only", .path.display())]
    Algorithm { path: PathBuf, algorithm: String },
    #[error("--sign-key {}: the private key is passphrase-protected; add it to ssh-agent (ssh-add) and pass its .pub file", .path.display())]
    Encrypted { path: PathBuf },
    #[error("--sign-key {}: a public key, so its private half must be in ssh-agent, but SSH_AUTH_SOCK is not set", .path.display())]
    NoAgent { path: PathBuf },
    #[error("ssh-agent at {}: {message}", .socket.display())]
    Agent { socket: PathBuf, message: String },
    #[error("signing the seal: {0}")]
    Sign(String),
}

/// A key that signs seals.
pub enum SealSigner {
    /// An unencrypted private key read from a file.
    Key(Box<PrivateKey>),
    /// A public key whose private half `ssh-agent` holds.
    Agent { socket: PathBuf, public: PublicKey },
}

impl std::fmt::Debug for SealSigner {
    /// Names the key by fingerprint; never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealSigner({})", self.fingerprint())
    }
}

impl SealSigner {
    /// Loads `path` (see the module docs). With a public key, checks now,
    /// before anything runs, that the agent at `agent` (the caller's
    /// `SSH_AUTH_SOCK`) holds its private half.
    pub fn load(path: &Path, agent: Option<&Path>) -> Result<SealSigner, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let algorithm_error = |algorithm: ssh_key::Algorithm| SignError::Algorithm {
            path: path.to_path_buf(),
            algorithm: algorithm.as_str().to_string(),
        };
        if let Ok(key) = PrivateKey::from_openssh(text.trim()) {
            if !key.algorithm().is_ed25519() {
                return Err(algorithm_error(key.algorithm()));
            }
            if key.is_encrypted() {
                return Err(SignError::Encrypted {
                    path: path.to_path_buf(),
                });
            }
            return Ok(SealSigner::Key(Box::new(key)));
        }
        let public = PublicKey::from_openssh(text.trim()).map_err(|_| {
            // Key types this build cannot even parse (ECDSA, FIDO) are still
            // named, so the message says what to do.
            match text.split_whitespace().next() {
                Some(first)
                    if ["ssh-", "ecdsa-", "sk-"]
                        .iter()
                        .any(|p| first.starts_with(p)) =>
                {
                    SignError::Algorithm {
                        path: path.to_path_buf(),
                        algorithm: first.to_string(),
                    }
                }
                _ => SignError::NotAKey {
                    path: path.to_path_buf(),
                },
            }
        })?;
        if !public.algorithm().is_ed25519() {
            return Err(algorithm_error(public.algorithm()));
        }
        let socket = agent
            .filter(|s| !s.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .ok_or_else(|| SignError::NoAgent {
                path: path.to_path_buf(),
            })?;
        let blob = key_blob(&public)?;
        let identities = agent::identities(&socket)?;
        if !identities.contains(&blob) {
            return Err(SignError::Agent {
                socket,
                message: format!(
                    "does not hold the private key of {} (ssh-add it first)",
                    public.fingerprint(HashAlg::Sha256)
                ),
            });
        }
        Ok(SealSigner::Agent { socket, public })
    }

    /// `SHA256:…` of the public key, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        match self {
            SealSigner::Key(key) => key.fingerprint(HashAlg::Sha256).to_string(),
            SealSigner::Agent { public, .. } => public.fingerprint(HashAlg::Sha256).to_string(),
        }
    }

    /// The armored SSHSIG (`-----BEGIN SSH SIGNATURE-----`) over `message`,
    /// with a trailing newline, as `ssh-keygen -Y sign` writes it.
    pub fn sign(&self, message: &[u8]) -> Result<String, SignError> {
        let sig = match self {
            SealSigner::Key(key) => key
                .sign(SIGNATURE_NAMESPACE, HashAlg::Sha512, message)
                .map_err(|e| SignError::Sign(e.to_string()))?,
            SealSigner::Agent { socket, public } => {
                let data = SshSig::signed_data(SIGNATURE_NAMESPACE, HashAlg::Sha512, message)
                    .map_err(|e| SignError::Sign(e.to_string()))?;
                let blob = agent::sign(socket, &key_blob(public)?, &data)?;
                let signature = Signature::try_from(blob.as_slice())
                    .map_err(|e| SignError::Sign(format!("the agent's answer: {e}")))?;
                let sig = SshSig::new(
                    public.key_data().clone(),
                    SIGNATURE_NAMESPACE,
                    HashAlg::Sha512,
                    signature,
                )
                .map_err(|e| SignError::Sign(e.to_string()))?;
                // An agent is trusted to sign, not to sign correctly.
                public
                    .verify(SIGNATURE_NAMESPACE, message, &sig)
                    .map_err(|e| SignError::Sign(format!("the agent's signature: {e}")))?;
                sig
            }
        };
        let mut pem = sig
            .to_pem(LineEnding::LF)
            .map_err(|e| SignError::Sign(e.to_string()))?;
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        Ok(pem)
    }
}

fn key_blob(public: &PublicKey) -> Result<Vec<u8>, SignError> {
    public
        .to_bytes()
        .map_err(|e| SignError::Sign(format!("encoding the public key: {e}")))
}

/// The two ssh-agent requests runproof needs (draft-miller-ssh-agent).
mod agent {
    use super::*;

    const FAILURE: u8 = 5;
    const REQUEST_IDENTITIES: u8 = 11;
    const IDENTITIES_ANSWER: u8 = 12;
    const SIGN_REQUEST: u8 = 13;
    const SIGN_RESPONSE: u8 = 14;
    /// Agents answer small messages; anything larger is not an agent.
    const MAX_MESSAGE: usize = 256 * 1024;

    /// The key blobs the agent holds.
    pub(super) fn identities(socket: &Path) -> Result<Vec<Vec<u8>>, SignError> {
        let answer = request(socket, REQUEST_IDENTITIES, &[])?;
        let fail = |message: &str| SignError::Agent {
            socket: socket.to_path_buf(),
            message: message.to_string(),
        };
        let (kind, mut body) = answer.split_first().ok_or_else(|| fail("empty answer"))?;
        if *kind != IDENTITIES_ANSWER {
            return Err(fail(&format!("refused to list keys (answer {kind})")));
        }
        let count = take_u32(&mut body).ok_or_else(|| fail("malformed key list"))?;
        let mut keys = Vec::new();
        for _ in 0..count {
            let blob = take_string(&mut body).ok_or_else(|| fail("malformed key list"))?;
            take_string(&mut body).ok_or_else(|| fail("malformed key list"))?;
            keys.push(blob.to_vec());
        }
        Ok(keys)
    }

    /// Asks the agent to sign `data` with the key `blob`; returns the
    /// signature blob (`string algorithm, string signature`).
    pub(super) fn sign(socket: &Path, blob: &[u8], data: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut payload = Vec::new();
        put_string(&mut payload, blob);
        put_string(&mut payload, data);
        payload.extend_from_slice(&0u32.to_be_bytes());
        let answer = request(socket, SIGN_REQUEST, &payload)?;
        let fail = |message: String| SignError::Agent {
            socket: socket.to_path_buf(),
            message,
        };
        match answer.split_first() {
            Some((&SIGN_RESPONSE, mut body)) => take_string(&mut body)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| fail("malformed signature".into())),
            Some((&FAILURE, _)) => Err(fail("refused to sign".into())),
            Some((kind, _)) => Err(fail(format!("unexpected answer {kind}"))),
            None => Err(fail("empty answer".into())),
        }
    }

    fn request(socket: &Path, kind: u8, payload: &[u8]) -> Result<Vec<u8>, SignError> {
        let io = |e: std::io::Error| SignError::Agent {
            socket: socket.to_path_buf(),
            message: e.to_string(),
        };
        let mut stream = UnixStream::connect(socket).map_err(io)?;
        // An agent that asks for confirmation waits for a human; a dead one
        // must not hang the seal forever.
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(io)?;
        let mut message = Vec::with_capacity(payload.len() + 5);
        message.extend_from_slice(&(payload.len() as u32 + 1).to_be_bytes());
        message.push(kind);
        message.extend_from_slice(payload);
        stream.write_all(&message).map_err(io)?;
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).map_err(io)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_MESSAGE {
            return Err(SignError::Agent {
                socket: socket.to_path_buf(),
                message: format!("answer of {len} bytes"),
            });
        }
        let mut answer = vec![0u8; len];
        stream.read_exact(&mut answer).map_err(io)?;
        Ok(answer)
    }

    fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn take_u32(input: &mut &[u8]) -> Option<u32> {
        let (head, rest) = input.split_first_chunk::<4>()?;
        *input = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn take_string<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = take_u32(input)? as usize;
        if input.len() < len {
            return None;
        }
        let (head, rest) = input.split_at(len);
        *input = rest;
        Some(head)
    }
}
