//! What an HTTP check may ask of a response, below the config that names it and the engine that
//! runs it: the condition language (`status == 200`, `body.status == "ok"`, `cert.expires_in >
//! 14d`), the guard against requests to link-local and metadata addresses, and how a TLS
//! certificate and its failures read. The config validates with these at load; the engine
//! evaluates with them at each check.

pub mod condition;
pub mod ssrf;
pub mod tls;
