//! The shell's half of TLS: which certificate new sessions get, starting a
//! session when the sniffer sees `0x16`, the handshake's deadline, the
//! end of the handshake (sniffing starts again inside it), `--tls-only`'s
//! refusals, and SIGHUP's reload.
//!
//! The bytes themselves go through `stream::Stream`; certificates are
//! read and configurations built by `crate::tls`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use log::{debug, info, warn};
use rustls::ServerConfig;

use super::conn::{ConnId, Phase};
use super::stream::Started;
use super::timers::TimerKind;
use super::Server;
use crate::config::Config;
use crate::hub::error::ErrorCode;
use crate::hub::event::LeaveReason;
use crate::proto::http::Response;

/// The loop's time one turn may spend starting TLS sessions. Starting one
/// is the costly part of a handshake (a key exchange, a signature and the
/// key schedule: 0.2-0.4 ms with an ECDSA P-256 key and X25519); once a
/// turn has spent this much, the next ClientHellos wait for the next turn
/// (at least one starts each turn), so that a storm of new connections
/// (every client reconnecting after a restart) delays the chat's flushes
/// by about this much a turn, not by the whole storm.
pub(super) const HANDSHAKE_BUDGET: Duration = Duration::from_millis(2);

/// What the server knows of its TLS: the configuration new sessions start
/// from (swapped on SIGHUP; sessions already open keep the `Arc` they
/// started with) and where it came from.
pub(super) struct TlsState {
    pub config: Arc<ServerConfig>,
    /// `--tls-cert` and `--tls-key`; `None` for `--tls-self-signed`.
    files: Option<(PathBuf, PathBuf)>,
    /// `--tls-only`.
    pub only: bool,
}

impl TlsState {
    /// The certificate of `--tls-cert`/`--tls-key`, or a self-signed one;
    /// `None` without TLS. A bad file or a lone `--tls-only` stops the
    /// start with a message saying what is wrong.
    pub(super) fn from_config(config: &Config) -> Result<Option<TlsState>, String> {
        if config.tls_only && !config.tls() {
            return Err("--tls-only needs --tls-cert and --tls-key, or --tls-self-signed".into());
        }
        let (identity, files) = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let id = crate::tls::load(cert, key)?;
                info!(
                    "TLS: certificate {} (SHA-256 {})",
                    cert.display(),
                    id.fingerprint
                );
                (id, Some((cert.clone(), key.clone())))
            }
            _ if config.tls_self_signed => {
                let hosts: Vec<_> = config.listen.iter().map(|a| a.ip()).collect();
                let id = crate::tls::self_signed(&hosts)?;
                info!(
                    "TLS: a self-signed certificate made for this run, for localhost and the \
                     --listen hosts (SHA-256 {}); clients must be told to accept it",
                    id.fingerprint
                );
                (id, None)
            }
            _ => return Ok(None),
        };
        if config.tls_only {
            info!("TLS only: plain connections are refused");
        }
        Ok(Some(TlsState {
            config: identity.config,
            files,
            only: config.tls_only,
        }))
    }

    /// SIGHUP: read the files again. New sessions get the new pair; a bad
    /// file is logged and the pair in use is kept.
    pub(super) fn reload(&mut self) {
        let Some((cert, key)) = &self.files else {
            info!("SIGHUP: the certificate is self-signed, nothing to reload");
            return;
        };
        match crate::tls::load(cert, key) {
            Ok(id) => {
                self.config = id.config;
                info!(
                    "SIGHUP: TLS certificate reloaded from {} (SHA-256 {}); open connections keep theirs",
                    cert.display(),
                    id.fingerprint
                );
            }
            Err(e) => warn!("SIGHUP: TLS certificate not reloaded, the old one stays: {e}"),
        }
    }
}

impl Server {
    /// The sniffer saw a TLS handshake record: start a session with the
    /// bytes read so far, or close the connection if this port has no TLS,
    /// or if it is TLS already (TLS inside TLS is not something we speak).
    pub(super) fn start_tls(&mut self, id: ConnId, first: &[u8]) {
        let header = self.config.header_timeout();
        let Some(tls) = &self.tls else {
            debug!("{id}: TLS ClientHello without TLS configured; closing");
            self.doom(id, LeaveReason::Disconnect);
            return;
        };
        let config = tls.config.clone();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.stream.is_tls() {
            debug!("{id}: a TLS record inside TLS; closing");
            self.doom(id, LeaveReason::Disconnect);
            return;
        }
        let accepted = conn.accepted;
        if self.turn_handshakes >= HANDSHAKE_BUDGET {
            // Later: the bytes wait in the sniff buffer, the id in line.
            if let Phase::Sniffing { buf } = &mut conn.phase {
                buf.extend_from_slice(first);
            }
            self.tls_deferred.push(id);
            self.counters.tls_deferred += 1;
            return;
        }
        self.counters.tls_handshakes += 1;
        let began = Instant::now();
        let started = conn.stream.start_tls(&config, first);
        // The first of a turn always starts, however long the last took.
        self.turn_handshakes += began.elapsed();
        match started {
            Started::Ok => {
                debug!("{id}: TLS handshake");
                self.counters.tls_open += 1;
                // The handshake is due --header-timeout after the accept.
                self.timers.arm(accepted + header, id, TimerKind::Handshake);
                // Its answer (or the rest of the ClientHello, already in
                // the socket) is the loop's to move now.
                self.conns.mark_dirty(id);
                self.backlog.push(id);
            }
            Started::Refused(why) => {
                debug!("{id}: not TLS after 0x16: {why}");
                self.counters.tls_failures += 1;
                self.doom(id, LeaveReason::Disconnect);
            }
        }
    }

    /// Starts the sessions that waited for this turn's budget, oldest first
    /// (those still waiting go on waiting). A connection that has gone, or
    /// has started since (more bytes came), is skipped.
    pub(super) fn resume_deferred_tls(&mut self) {
        if self.tls_deferred.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.tls_deferred);
        for id in waiting {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            if conn.stream.is_tls() || conn.close.is_some() {
                continue;
            }
            let Phase::Sniffing { buf } = &mut conn.phase else {
                continue;
            };
            if buf.first() != Some(&0x16) {
                continue;
            }
            let first = std::mem::take(buf);
            self.start_tls(id, &first);
        }
    }

    /// After a read: the handshake may have finished. Sniffing then starts
    /// over on the decrypted bytes, with its own silence and header timeouts
    /// counted from now.
    pub(super) fn after_tls_read(&mut self, id: ConnId) {
        let now = self.now;
        let sniff = self.config.sniff_timeout();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.stream.take_handshake_done() {
            debug!("{id}: TLS handshake done, {}", conn.stream.describe_tls());
            conn.accepted = now;
            self.counters.tls_done += 1;
            self.timers.arm(now + sniff, id, TimerKind::Sniff);
        }
        if conn.stream.pending() {
            self.conns.mark_dirty(id);
        }
    }

    /// A handshake not finished by its deadline is closed; it slowed
    /// nobody else (the loop never waited for it).
    pub(super) fn handshake_timer(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        if conn.stream.handshaking() && conn.close.is_none() {
            debug!("{id}: TLS handshake not finished within --header-timeout; closing");
            self.doom(id, LeaveReason::Timeout);
        }
    }

    /// `--tls-only` and a plain line client: told why, closed. Returns
    /// whether it was refused.
    pub(super) fn refuse_plain_line(&mut self, id: ConnId) -> bool {
        if !self.plain_refused(id) {
            return false;
        }
        debug!("{id}: plain line client refused (--tls-only)");
        let msg = format!("!!! {}: this server speaks TLS only\n", ErrorCode::Insecure);
        self.conns.queue(id, Bytes::from(msg));
        self.close_after_flush(id);
        true
    }

    /// Whether this connection is plain and the port `--tls-only`.
    pub(super) fn plain_refused(&self, id: ConnId) -> bool {
        self.tls.as_ref().is_some_and(|t| t.only)
            && self.conns.get(id).is_some_and(|c| !c.stream.is_tls())
    }

    /// `--tls-only` and plain HTTP: `308` to the same path over https on
    /// the host the client asked for (or `--public-url`'s).
    pub(super) fn to_https(&self, host: Option<&str>, target: &str) -> Response {
        let origin = match super::http::safe_host(host) {
            Some(h) => format!("https://{h}"),
            None => self.public_url.replacen("http://", "https://", 1),
        };
        let target = if target.starts_with('/') { target } else { "/" };
        Response::text(308, "this server speaks TLS only: use https://")
            .with_header("Location", format!("{origin}{target}"))
    }

    /// SIGHUP: reload the certificate, if there is TLS.
    pub(super) fn on_hangup(&mut self) {
        match &mut self.tls {
            Some(tls) => tls.reload(),
            None => info!("SIGHUP: no TLS, nothing to reload"),
        }
    }
}
