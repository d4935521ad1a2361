//! `--max-per-ip`: connections counted per remote address, loopback exempt.
//!
//! Kept apart from the loop so the rule can be tested with made-up
//! addresses: the integration tests can only connect from loopback.

use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug)]
pub(super) struct PerIp {
    max: usize,
    /// Only addresses with at least one open connection are present.
    open: HashMap<IpAddr, usize>,
}

impl PerIp {
    pub(super) fn new(max: usize) -> PerIp {
        PerIp {
            max,
            open: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`, or refuses it (`false`) when the
    /// address already has `max` open. Loopback is never limited.
    pub(super) fn admit(&mut self, ip: IpAddr) -> bool {
        if exempt(ip) {
            return true;
        }
        let n = self.open.entry(ip).or_default();
        if *n >= self.max {
            if *n == 0 {
                self.open.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// A connection from `ip` closed.
    pub(super) fn release(&mut self, ip: IpAddr) {
        if exempt(ip) {
            return;
        }
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }

    /// Addresses with open connections (for tests).
    #[cfg(test)]
    pub(super) fn addresses(&self) -> usize {
        self.open.len()
    }
}

fn exempt(ip: IpAddr) -> bool {
    is_loopback(ip)
}

/// Whether `ip` is loopback, an IPv4 one on a dual-stack socket
/// (`::ffff:127.0.0.1`) included.
pub(super) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_address_and_frees_on_release() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let mut p = PerIp::new(2);
        assert!(p.admit(a));
        assert!(p.admit(a));
        assert!(!p.admit(a), "third from the same address is refused");
        assert!(p.admit(b), "another address has its own count");
        p.release(a);
        assert!(p.admit(a), "a slot freed by a close is usable again");
        p.release(a);
        p.release(a);
        p.release(b);
        assert_eq!(p.addresses(), 0, "no entry is left for closed addresses");
    }

    #[test]
    fn loopback_is_exempt() {
        let mut p = PerIp::new(1);
        for ip in ["127.0.0.1", "127.5.5.5", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            for _ in 0..10 {
                assert!(p.admit(ip), "{ip}");
            }
            p.release(ip);
        }
        assert_eq!(p.addresses(), 0);
    }

    #[test]
    fn zero_refuses_every_remote_address() {
        let mut p = PerIp::new(0);
        assert!(!p.admit("198.51.100.7".parse().unwrap()));
        assert_eq!(p.addresses(), 0);
    }
}
