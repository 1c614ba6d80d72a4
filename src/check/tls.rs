//! What the HTTP checker knows about TLS, in one place: reading a `ca_file` into the CA
//! certificates a client trusts, reading when a server's certificate expires, and saying why a
//! handshake failed in words a self-hoster can act on. rustls's own messages are written for
//! developers ("invalid peer certificate: UnknownIssuer", expiry as UNIX seconds), and a check's
//! reason is read by whoever is on call.

use chrono::{DateTime, TimeDelta, Utc};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, Error as TlsError};
use x509_cert::der::Decode;

/// The line that opens a certificate in a PEM file.
const BEGIN_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// Reads the CA certificates of a PEM file (`ca_file`), DER-encoded, in file order. Other PEM
/// sections, such as a private key kept in the same file, are skipped. Every certificate must
/// parse and be usable as a trust anchor, and there must be at least one: a file that is half
/// right would otherwise fail only at the first check. The error names the certificate by its
/// line and has no trailing full stop.
pub fn read_ca_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut certificates = Vec::new();
    for (index, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let which = match begin_line(pem, index) {
            Some(line) => format!("the certificate at line {line}"),
            None => format!("certificate {}", index + 1),
        };
        let der = item.map_err(|err| format!("{which} is not valid PEM: {err}"))?;
        x509_cert::Certificate::from_der(&der)
            .map_err(|err| format!("{which} is not an X.509 certificate: {err}"))?;
        // rustls is what will trust it, so rustls decides whether it can be a trust anchor.
        rustls::RootCertStore::empty()
            .add(der.clone())
            .map_err(|err| format!("{which} cannot be used as a CA: {err}"))?;
        certificates.push(der.to_vec());
    }
    if certificates.is_empty() {
        return Err("holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)".into());
    }
    Ok(certificates)
}

/// The 1-based line of the `index`th (from 0) certificate's BEGIN line, if there is one.
fn begin_line(pem: &[u8], index: usize) -> Option<usize> {
    pem.split(|&byte| byte == b'\n')
        .enumerate()
        .filter(|(_, line)| line.trim_ascii() == BEGIN_CERTIFICATE)
        .nth(index)
        .map(|(number, _)| number + 1)
}

/// When a DER-encoded certificate stops being valid (its notAfter).
pub fn not_after(der: &[u8]) -> Result<DateTime<Utc>, String> {
    let certificate = x509_cert::Certificate::from_der(der)
        .map_err(|err| format!("the server's certificate does not parse: {err}"))?;
    let since_epoch = certificate
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration();
    i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| "the server's certificate has an expiry date out of range".to_string())
}

/// Finds the TLS error in a transport error's source chain and says what went wrong; `None`
/// when the failure had nothing to do with TLS.
pub fn handshake_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(tls) = tls_error(current) {
            return Some(describe(tls));
        }
        next = current.source();
    }
    None
}

/// The rustls error that `err` is, or holds. tokio-rustls hands rustls's error over inside an
/// `io::Error`, which hyper-rustls wraps in another; an `io::Error`'s `source` skips straight
/// past what it holds, so each one is opened here.
fn tls_error<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e TlsError> {
    if let Some(tls) = err.downcast_ref::<TlsError>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_error(inner)
}

/// Says what a TLS error means for the person who reads the check's reason.
fn describe(err: &TlsError) -> String {
    match err {
        TlsError::InvalidCertificate(problem) => certificate_problem(problem),
        // A server that answers a ClientHello in plain HTTP sends bytes that are no TLS record.
        TlsError::InvalidMessage(_) => "TLS handshake failed: the server did not answer in TLS \
                                        (is this port plain http?)"
            .to_string(),
        other => format!("TLS handshake failed: {other}"),
    }
}

/// Describes why the server's certificate was refused.
fn certificate_problem(problem: &CertificateError) -> String {
    let at = |time: rustls::pki_types::UnixTime| {
        i64::try_from(time.as_secs())
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    match problem {
        CertificateError::UnknownIssuer => "TLS certificate not trusted: unknown issuer \
                                            (self-signed or from a private CA; set ca_file to \
                                            trust that CA)"
            .to_string(),
        CertificateError::BadSignature => {
            "TLS certificate not trusted: its signature does not match its issuer".to_string()
        }
        CertificateError::ExpiredContext { time, not_after } => {
            let (time, not_after) = (at(*time), at(*not_after));
            format!(
                "TLS certificate expired on {} ({} ago)",
                format_date(not_after),
                format_span(time - not_after)
            )
        }
        CertificateError::Expired => "TLS certificate expired".to_string(),
        CertificateError::NotValidYetContext { time, not_before } => {
            let (time, not_before) = (at(*time), at(*not_before));
            format!(
                "TLS certificate not valid yet: valid from {} ({} from now; is this host's clock \
                 right?)",
                format_date(not_before),
                format_span(not_before - time)
            )
        }
        CertificateError::NotValidYet => {
            "TLS certificate not valid yet (is this host's clock right?)".to_string()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names = if presented.is_empty() {
                "no host name".to_string()
            } else {
                presented.join(", ")
            };
            format!("TLS certificate is for {names}, not {}", expected.to_str())
        }
        CertificateError::NotValidForName => {
            "TLS certificate is not valid for this host name".to_string()
        }
        CertificateError::Revoked => "TLS certificate revoked".to_string(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "TLS certificate is not meant for a server (see its extended key usage)".to_string()
        }
        other => format!("TLS certificate not trusted: {other}"),
    }
}

/// A certificate date as reasons and condition failures show it: `2026-03-07 12:00 UTC`.
pub fn format_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A span of time in the largest whole unit that reads well for certificates: `5 days`,
/// `1 day`, `7 hours`, `less than an hour`. The sign is ignored; callers say "left" or "ago".
pub fn format_span(span: TimeDelta) -> String {
    let span = span.abs();
    match (span.num_days(), span.num_hours()) {
        (1, _) => "1 day".to_string(),
        (days, _) if days > 1 => format!("{days} days"),
        (_, 1) => "1 hour".to_string(),
        (_, hours) if hours > 1 => format!("{hours} hours"),
        _ => "less than an hour".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_whole_days_then_hours() {
        let cases = [
            (TimeDelta::days(90), "90 days"),
            (TimeDelta::days(5) + TimeDelta::hours(23), "5 days"),
            (TimeDelta::hours(36), "1 day"),
            (TimeDelta::hours(23), "23 hours"),
            (TimeDelta::minutes(90), "1 hour"),
            (TimeDelta::minutes(59), "less than an hour"),
            (-TimeDelta::days(3), "3 days"),
        ];
        for (span, expected) in cases {
            assert_eq!(format_span(span), expected, "{span}");
        }
    }

    #[test]
    fn certificate_problems_are_said_in_words() {
        let day = 86_400;
        let cases = [
            (
                CertificateError::ExpiredContext {
                    time: rustls::pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(20_000 * day + 3 * day),
                    ),
                    not_after: rustls::pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(20_000 * day),
                    ),
                },
                "TLS certificate expired on 2024-10-04 00:00 UTC (3 days ago)",
            ),
            (
                CertificateError::NotValidForNameContext {
                    expected: rustls::pki_types::ServerName::try_from("api.example.com")
                        .unwrap()
                        .to_owned(),
                    presented: vec!["localhost".into(), "127.0.0.1".into()],
                },
                "TLS certificate is for localhost, 127.0.0.1, not api.example.com",
            ),
            (CertificateError::Revoked, "TLS certificate revoked"),
        ];
        for (problem, expected) in cases {
            assert_eq!(certificate_problem(&problem), expected);
        }
    }

    #[test]
    fn a_pem_file_without_certificates_is_refused() {
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            read_ca_pem(key_only).unwrap_err(),
            "holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)"
        );
        let garbled = b"# our CA\n\n-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
        let err = read_ca_pem(garbled).unwrap_err();
        assert!(
            err.starts_with("the certificate at line 3 is not an X.509 certificate: "),
            "{err}"
        );
    }
}
