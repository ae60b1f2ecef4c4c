//! One classifier: which [`FailureClass`] an error is, decided from error
//! *types* (io kinds, rustls, hyper, SQLSTATE codes), never from message text.

use std::error::Error;
use std::io::{self, ErrorKind};

use super::errors;
use crate::check::resolve::ResolveError;
use crate::core::FailureClass;

/// A local or socket I/O error. A rustls error carried inside (how
/// tokio-rustls reports handshake failures) makes it `tls`.
pub fn io(err: &io::Error) -> FailureClass {
    if let Some(inner) = err.get_ref() {
        if inner.downcast_ref::<rustls::Error>().is_some() {
            return FailureClass::Tls;
        }
        if let Some(resolve) = inner.downcast_ref::<ResolveError>() {
            return resolve.class();
        }
    }
    match err.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::NotConnected
        | ErrorKind::BrokenPipe
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::NetworkDown => FailureClass::Refused,
        ErrorKind::TimedOut | ErrorKind::WouldBlock => FailureClass::Timeout,
        // The peer hung up mid-reply or sent bytes that are not the protocol.
        ErrorKind::InvalidData | ErrorKind::UnexpectedEof => FailureClass::Protocol,
        // A file or program the step names is missing or not ours to use.
        ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::InvalidInput => {
            FailureClass::Config
        }
        _ => FailureClass::Io,
    }
}

/// Any TLS error: the handshake, the certificate or the protocol.
pub fn rustls(_err: &rustls::Error) -> FailureClass {
    FailureClass::Tls
}

/// A hyper error (bad HTTP from the peer, a connection that closed early).
pub fn hyper(err: &hyper::Error) -> FailureClass {
    if err.is_timeout() {
        FailureClass::Timeout
    } else if err.is_parse() || err.is_parse_status() || err.is_incomplete_message() {
        FailureClass::Protocol
    } else if err.is_closed() || err.is_canceled() {
        FailureClass::Refused
    } else {
        FailureClass::Protocol
    }
}

/// The class of the first cause in `err`'s chain whose type says something:
/// a failed name lookup, a TLS error, hyper's verdict, or a socket error.
pub fn chain(err: &(dyn Error + 'static)) -> Option<FailureClass> {
    for cause in errors::chain(err) {
        // The run's hickory resolver hands reqwest and the kinds a typed
        // error: NXDOMAIN and missing records are `dns`.
        if let Some(resolve) = cause.downcast_ref::<ResolveError>() {
            return Some(resolve.class());
        }
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(rustls(tls));
        }
        if let Some(hyper_err) = cause.downcast_ref::<hyper::Error>() {
            // hyper wraps socket errors; the socket's kind says more.
            if let Some(class) = cause.source().and_then(chain) {
                return Some(class);
            }
            return Some(hyper(hyper_err));
        }
        if let Some(io_err) = cause.downcast_ref::<io::Error>() {
            let class = io(io_err);
            // An uncategorized io error may still wrap a typed cause.
            if class != FailureClass::Io {
                return Some(class);
            }
        }
    }
    None
}

/// A reqwest error: its own flags first, then the typed causes.
pub fn reqwest(err: &reqwest::Error) -> FailureClass {
    if err.is_timeout() {
        return FailureClass::Timeout;
    }
    if err.is_builder() {
        return FailureClass::Config;
    }
    if let Some(class) = chain(err) {
        return class;
    }
    if err.is_connect() {
        FailureClass::Refused
    } else {
        // A decode or body error, or a request the peer answered with
        // something that is not HTTP.
        FailureClass::Protocol
    }
}

/// A tokio-postgres error: SQLSTATE when the server answered, else the
/// driver's error kind and the typed causes.
pub fn postgres(err: &tokio_postgres::Error) -> FailureClass {
    use tokio_postgres::error::SqlState;
    if let Some(db) = err.as_db_error() {
        let code = db.code();
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            FailureClass::Auth
        } else if *code == SqlState::INVALID_CATALOG_NAME
            || *code == SqlState::UNDEFINED_TABLE
            || *code == SqlState::UNDEFINED_COLUMN
            || *code == SqlState::UNDEFINED_FUNCTION
            || *code == SqlState::UNDEFINED_OBJECT
        {
            FailureClass::NotFound
        } else if *code == SqlState::INTERNAL_ERROR
            && db.message().contains(SUPAVISOR_UNKNOWN_TENANT)
        {
            // Supavisor's answer to an unknown `postgres.<ref>` user: its only
            // signal is this fixed text under the generic XX000.
            FailureClass::Auth
        } else if code.code().starts_with("42") {
            // Syntax errors and access rule violations: the query as written.
            FailureClass::Config
        } else if code.code().starts_with("08")
            || code.code().starts_with("53")
            || code.code().starts_with("57P")
        {
            // Connection exceptions, resources exhausted, starting/shutting down.
            FailureClass::Refused
        } else {
            FailureClass::Expectation
        };
    }
    if let Some(class) = chain(err) {
        return class;
    }
    match postgres_kind(err).as_deref() {
        Some("Tls") => FailureClass::Tls,
        Some("Authentication") => FailureClass::Auth,
        Some("Config" | "ConfigParse" | "ToSql" | "Parameters") => FailureClass::Config,
        Some("Timeout") => FailureClass::Timeout,
        Some("Connect" | "Closed") => FailureClass::Refused,
        Some("Io") => FailureClass::Io,
        _ => FailureClass::Protocol,
    }
}

/// The message Supavisor sends with XX000 for a user it does not know.
pub const SUPAVISOR_UNKNOWN_TENANT: &str = "Tenant or user not found";

/// tokio-postgres keeps its error kind private; its `Debug` output
/// (`Error { kind: Tls, cause: … }`) is the only place the variant shows.
fn postgres_kind(err: &tokio_postgres::Error) -> Option<String> {
    let debug = format!("{err:?}");
    let rest = debug.split_once("kind: ")?.1;
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
