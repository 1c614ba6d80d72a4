//! The SSRF guard for checks: link-local and cloud-metadata addresses are refused unless an
//! integration sets `allow_private = true`. Loopback and the private ranges stay allowed, because
//! self-hosters monitor their own LAN.
//!
//! The guard runs where addresses become concrete: at config time for literal IPs, and in the DNS
//! resolver the check client uses, so a hostname that resolves to a metadata address (or a
//! redirect to one) is caught as well.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether checks may not reach `ip` without `allow_private`.
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_blocked_v4(v4),
            None => is_blocked_v6(v6),
        },
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    // 169.254.0.0/16 is link-local and holds the AWS/GCP/Azure metadata address 169.254.169.254;
    // 100.100.100.200 is Alibaba Cloud's metadata service.
    ip.is_link_local() || ip == Ipv4Addr::new(100, 100, 100, 200)
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    // fe80::/10 is link-local; fd00:ec2::254 is AWS's IPv6 metadata address.
    let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
    link_local || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
}

/// A resolver that drops blocked addresses from DNS answers, and fails when none is left.
#[derive(Debug, Default, Clone)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| !is_blocked(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves only to link-local or metadata addresses (set allow_private = true to allow)"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The guard as reqwest wants it.
pub fn resolver() -> Arc<GuardedResolver> {
    Arc::new(GuardedResolver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_link_local_and_metadata_only() {
        let cases = [
            ("169.254.169.254", true),
            ("169.254.0.1", true),
            ("100.100.100.200", true),
            ("fd00:ec2::254", true),
            ("fe80::1", true),
            ("::ffff:169.254.169.254", true),
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("192.168.1.10", false),
            ("172.16.0.1", false),
            ("::1", false),
            ("8.8.8.8", false),
        ];
        for (ip, blocked) in cases {
            assert_eq!(is_blocked(ip.parse().unwrap()), blocked, "{ip}");
        }
    }
}
