//! Who may use the admin and analytics endpoints: the admin token, and the lock on a gateway
//! exposed beyond loopback without one.

use std::future::{ready, Ready};

use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::{ExposeSecret, SecretString};

use crate::error::GatewayError;

/// The rule for the admin and analytics endpoints, fixed at start-up.
#[derive(Debug)]
pub enum AdminGate {
    /// Bound to loopback with no token: only this machine can reach the port, so its
    /// users may administer it (a developer's gateway).
    Open,
    /// Callers must send `Authorization: Bearer <admin_token>`.
    Token(SecretString),
    /// Bound beyond loopback with no token: refused, with a message saying how to set one.
    Locked,
}

impl AdminGate {
    /// The gate for a gateway bound to `host` with `token` (None or empty: no token).
    pub fn new(token: Option<SecretString>, host: &str) -> Self {
        match token.filter(|t| !t.expose_secret().is_empty()) {
            Some(token) => Self::Token(token),
            None if is_loopback(host) => Self::Open,
            None => Self::Locked,
        }
    }

    /// Lets the call through, or says why not: 401 for a missing or wrong token, 403 when
    /// the gateway is locked.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), GatewayError> {
        match self {
            Self::Open => Ok(()),
            Self::Locked => Err(GatewayError::AdminLocked),
            Self::Token(expected) => {
                let presented = headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .map(str::trim);
                if presented.is_some_and(|p| {
                    constant_time_eq(p.as_bytes(), expected.expose_secret().as_bytes())
                }) {
                    Ok(())
                } else {
                    Err(GatewayError::Unauthorized {
                        message: "this endpoint requires `Authorization: Bearer <admin_token>` ([server] admin_token)".into(),
                    })
                }
            }
        }
    }
}

/// Whether `host` (the `[server] host` bind address) reaches this machine only. A name
/// other than `localhost` counts as exposed: what it resolves to can change.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Proof that a request passed the admin gate: an admin or analytics handler takes it as
/// its first argument, so the gate runs before the body is read.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = GatewayError;
    type Future = Ready<Result<Self, GatewayError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<AdminGate>>() {
            Some(gate) => gate.check(req.headers()).map(|()| Admin),
            None => Err(GatewayError::Internal {
                message: "the admin gate is not configured".into(),
            }),
        };
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_told_from_exposed_ones() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "::",
            "10.0.0.5",
            "192.168.1.2",
            "gateway.internal",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
