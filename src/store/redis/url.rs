//! `--redis URL`: `redis://[user:password@]host:port[/db]`.

use std::fmt;

/// Where Redis is, and how to log in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// A host name or an IP address (an IPv6 address without brackets).
    pub host: String,
    /// The port (6379 when not given).
    pub port: u16,
    /// `AUTH user password` (Redis 6 ACLs), or `AUTH password` alone.
    pub user: Option<String>,
    /// The password for `AUTH` (percent-decoded).
    pub password: Option<String>,
    /// `SELECT db`.
    pub db: u32,
}

impl RedisUrl {
    /// Parses the URL; the error says what is wrong with it (and never
    /// repeats the password).
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| {
            "a Redis URL starts with redis:// (rediss:// is not supported)".to_string()
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (u, p) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let u = decode(u).ok_or("the user name has a bad %-escape")?;
                let p = match p {
                    Some(p) => Some(decode(p).ok_or("the password has a bad %-escape")?),
                    None => None,
                };
                // `redis://:password@host` is the password alone.
                ((!u.is_empty()).then_some(u), p)
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or("an IPv6 host needs its closing ]")?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("the URL names no host".into());
        }
        let port = match port {
            None | Some("") => 6379,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("the port {p:?} is not a number from 1 to 65535"))?,
        };
        let db = match path.trim_end_matches('/') {
            "" => 0,
            d => d
                .parse::<u32>()
                .map_err(|_| format!("the database {d:?} is not a number"))?,
        };
        Ok(RedisUrl {
            host: host.to_string(),
            port,
            user,
            password,
            db,
        })
    }
}

/// Percent-decoding (`%40` is `@`), for user names and passwords.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// For the log: the password is never shown.
impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis://")?;
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => write!(f, ":***@")?,
            (None, None) => {}
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_natter_accepts() {
        let u = RedisUrl::parse("redis://127.0.0.1:6380").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.db, u.user, u.password),
            ("127.0.0.1", 6380, 0, None, None)
        );
        let u = RedisUrl::parse("redis://localhost").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("localhost", 6379));
        let u = RedisUrl::parse("redis://natter:s%40cret%3a1@[::1]:7000/3").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 7000);
        assert_eq!(u.db, 3);
        assert_eq!(u.user.as_deref(), Some("natter"));
        assert_eq!(u.password.as_deref(), Some("s@cret:1"));
        let u = RedisUrl::parse("redis://:only-a-password@h:1/").unwrap();
        assert_eq!(
            (u.user, u.password.as_deref()),
            (None, Some("only-a-password"))
        );
    }

    #[test]
    fn bad_urls_say_why_and_never_show_the_password() {
        for (url, says) in [
            ("http://h:1", "redis://"),
            ("rediss://h:1", "rediss"),
            ("redis://", "no host"),
            ("redis://h:0", "port"),
            ("redis://h:99999", "port"),
            ("redis://h:x", "port"),
            ("redis://h:1/x", "database"),
            ("redis://[::1:1", "]"),
            ("redis://u:p%zz@h", "%-escape"),
        ] {
            let e = RedisUrl::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
        let u = RedisUrl::parse("redis://natter:hunter2@h:1/2").unwrap();
        assert_eq!(u.to_string(), "redis://natter:***@h:1/2");
        assert!(!format!("{u:?}").contains("hunter2"));
        let u = RedisUrl::parse("redis://[::1]:6379").unwrap();
        assert_eq!(u.to_string(), "redis://[::1]:6379/0");
    }
}
