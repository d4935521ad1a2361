//! Every option of the server, each named after its `--flag`, and the
//! subcommands that work on its database instead of serving it (`natter
//! accounts ...`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// natter: one thread, one mio event loop, one port for netcat, the browser and bots.
#[derive(Parser, Debug, Clone)]
#[command(name = "natter", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on; give it more than once for several (port 0 picks a free port).
    #[arg(
        long = "listen",
        value_name = "ADDR",
        default_value = "127.0.0.1:7878",
        env = "NATTER_LISTEN",
        value_delimiter = ','
    )]
    pub listen: Vec<SocketAddr>,

    /// Let several natter processes listen on the same --listen addresses (SO_REUSEPORT; one
    /// per core, each still one thread): the kernel spreads new connections across them. Each
    /// process is still a chat of its own until they can share one through --redis (issue 18).
    #[arg(long, env = "NATTER_REUSE_PORT")]
    pub reuse_port: bool,

    /// SQLite file of the message history, images and accounts (":memory:" keeps nothing).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "natter.db",
        global = true,
        env = "NATTER_DB"
    )]
    pub db: String,

    /// Largest image, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024, env = "NATTER_MAX_IMAGE")]
    pub max_image: usize,

    /// Origin that image URLs sent to line clients start with (default: http:// and the
    /// first --listen address).
    #[arg(long, value_name = "URL", env = "NATTER_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Room every line client joins on connect.
    #[arg(
        long,
        value_name = "ROOM",
        default_value = "lobby",
        env = "NATTER_DEFAULT_ROOM"
    )]
    pub default_room: String,

    /// Messages replayed when joining a room.
    #[arg(long, value_name = "N", default_value_t = 50, env = "NATTER_HISTORY")]
    pub history: usize,

    /// Longest line a line client may send, in bytes (line ending not counted).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 4096,
        env = "NATTER_MAX_LINE"
    )]
    pub max_line: usize,

    /// Longest message text, in bytes.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 4000,
        env = "NATTER_MAX_MESSAGE"
    )]
    pub max_message: usize,

    /// Silence after accept, in milliseconds, that makes a connection a line client.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 300,
        env = "NATTER_SNIFF_MS"
    )]
    pub sniff_ms: u64,

    /// Drop line clients silent for this many seconds (off when not given).
    #[arg(long, value_name = "SECS", env = "NATTER_LINE_IDLE_TIMEOUT")]
    pub line_idle_timeout: Option<u64>,

    /// Messages (room messages, actions, images, direct messages) a connection may send per
    /// second.
    #[arg(long, value_name = "N", default_value_t = 10, env = "NATTER_RATE")]
    pub rate: u64,

    /// Messages a connection may send in a burst before --rate applies.
    #[arg(long, value_name = "N", default_value_t = 20, env = "NATTER_BURST")]
    pub burst: u64,

    /// Most connections at once (default: the open-file limit less a reserve); past it new
    /// ones get server_full (503 for HTTP) and are closed.
    #[arg(long, value_name = "N", env = "NATTER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most connections from one IP address (loopback is exempt).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        env = "NATTER_MAX_PER_IP"
    )]
    pub max_per_ip: usize,

    /// Seconds a client may take to send a complete HTTP request head (then 408).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        env = "NATTER_HEADER_TIMEOUT"
    )]
    pub header_timeout: u64,

    /// Seconds an idle HTTP keep-alive connection is kept open.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        env = "NATTER_HTTP_IDLE_TIMEOUT"
    )]
    pub http_idle_timeout: u64,

    /// Another origin allowed to open WebSockets (a scheme, host and port, as `https://chat.example.com`); repeatable.
    #[arg(
        long = "allow-origin",
        value_name = "ORIGIN",
        env = "NATTER_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origin: Vec<String>,

    /// Largest WebSocket message, in bytes, reassembled from its fragments (then close 1009).
    #[arg(long, value_name = "BYTES", default_value_t = 2 * 1024 * 1024, env = "NATTER_MAX_WS_MESSAGE")]
    pub max_ws_message: usize,

    /// Seconds of silence after which a WebSocket client is pinged; as long again without
    /// any frame and it is dropped.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        env = "NATTER_PING_INTERVAL"
    )]
    pub ping_interval: u64,

    /// Seconds a vanished WebSocket client's nick and rooms are held for it to resume.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 120,
        env = "NATTER_RESUME_GRACE"
    )]
    pub resume_grace: u64,

    /// Also serve GET /echo: a WebSocket endpoint that echoes every message, through the
    /// same frame codec and loop, for conformance testing (the Autobahn TestSuite).
    #[arg(long, env = "NATTER_WS_ECHO")]
    pub ws_echo: bool,

    /// Serve the loop's figures (the /loop page, /api/stats, /metrics) only to clients on
    /// loopback; others get 403. Without it anyone who reaches the port may read them.
    #[arg(long, env = "NATTER_PRIVATE_STATS")]
    pub private_stats: bool,

    /// Unsent output, in bytes, that one client may have after the server has written to it
    /// all its socket takes; past it chat input pauses, and a client that stops reading (2 s)
    /// or does not get back under half of it (5 s) is dropped as a slow consumer.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024, env = "NATTER_MAX_OUTBOUND")]
    pub max_outbound: usize,

    /// Unsent output, in bytes, of all clients together: past half of it chat input pauses and
    /// clients that stopped reading are dropped, biggest backlog first; past all of it the
    /// biggest backlogs are dropped until it is under.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024 * 1024, env = "NATTER_MAX_OUTBOUND_TOTAL")]
    pub max_outbound_total: usize,

    /// Guests may only register and log in: joining, saying, images and direct messages need
    /// an account.
    #[arg(long, env = "NATTER_REQUIRE_LOGIN")]
    pub require_login: bool,

    /// Whether anyone may /register (open), or only the operator adds accounts with `natter
    /// accounts add` (closed).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Registration::Open, env = "NATTER_REGISTRATION")]
    pub registration: Registration,

    /// An account that is an op in every room; repeatable.
    #[arg(
        long = "admin",
        value_name = "NAME",
        env = "NATTER_ADMIN",
        value_delimiter = ','
    )]
    pub admin: Vec<String>,

    /// Days a login token (the page's remembered login) stays valid.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 30,
        env = "NATTER_LOGIN_DAYS"
    )]
    pub login_days: u64,

    /// Seconds after sending a message during which its author may still edit it (deleting has
    /// no limit).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 900,
        env = "NATTER_EDIT_WINDOW"
    )]
    pub edit_window: u64,

    /// Length of the SQLite WAL (4 KiB pages) at which the loop copies its last few pages itself
    /// (a few milliseconds) so that it starts over, when messages never stop long enough for that.
    #[arg(long, value_name = "PAGES", default_value_t = 40_000,
          value_parser = clap::value_parser!(u32).range(100..), env = "NATTER_WAL_RESTART_PAGES")]
    pub wal_restart_pages: u32,

    /// Accept passwords over plain TCP from addresses other than loopback (they travel in
    /// clear text: use TLS instead where you can).
    #[arg(long, env = "NATTER_ALLOW_PLAINTEXT_PASSWORDS")]
    pub allow_plaintext_passwords: bool,

    /// PEM file of the TLS certificate chain, leaf first: the port then speaks TLS as well as
    /// plain TCP (a first byte 0x16 starts a handshake). Reloaded with the key on SIGHUP.
    #[arg(
        long,
        value_name = "PEM",
        env = "NATTER_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        value_name = "PEM",
        env = "NATTER_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Make a self-signed certificate for localhost and the --listen hosts at start, to try
    /// TLS out (clients must be told to accept it; the log gives its fingerprint).
    #[arg(long, env = "NATTER_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Refuse plain connections: a line client is told `insecure` and closed, HTTP gets a 308
    /// to https:// (needs --tls-cert and --tls-key, or --tls-self-signed).
    #[arg(long, env = "NATTER_TLS_ONLY")]
    pub tls_only: bool,

    /// Share the chat with every natter process given the same Redis
    /// (redis://[user:password@]host:port[/db]; PROTOCOL-2 section 6). Without it: one process,
    /// SQLite, no Redis needed.
    #[arg(long, value_name = "URL", env = "NATTER_REDIS")]
    pub redis: Option<String>,

    /// With --redis: entries each room's stream keeps, about (older ones are trimmed; history
    /// and search reach back this far).
    #[arg(
        long,
        value_name = "N",
        env = "NATTER_REDIS_KEEP",
        default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(100..)
    )]
    pub redis_keep: u64,

    /// Work on the database instead of serving (none: serve).
    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// What `natter` does instead of serving.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Sub {
    /// Manage accounts in the --db file (the server may be running meanwhile).
    Accounts {
        /// What to do.
        #[command(subcommand)]
        action: AccountsCmd,
    },
}

/// `natter accounts ...`: the operator's hand on accounts.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AccountsCmd {
    /// Register NAME; its password is the first line of standard input.
    Add {
        /// The account's name: a valid nick.
        name: String,
    },
    /// Set NAME's password (first line of standard input) and log out all its logins.
    Passwd {
        /// The account's name.
        name: String,
    },
    /// Delete NAME and log out all its logins.
    Del {
        /// The account's name.
        name: String,
    },
    /// List every account with the day it was registered.
    List,
}

/// `--registration`: who makes accounts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may `/register` the nick they hold.
    Open,
    /// `/register` answers `not_permitted`; `natter accounts add` makes accounts.
    Closed,
}

impl Config {
    /// `--sniff-ms`: how long a new connection may stay silent before it is
    /// taken for a line client.
    pub fn sniff_timeout(&self) -> Duration {
        Duration::from_millis(self.sniff_ms)
    }

    /// `--header-timeout`: how long an HTTP request head may take.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout)
    }

    /// `--http-idle-timeout`: how long an idle keep-alive connection is kept.
    pub fn http_idle(&self) -> Duration {
        Duration::from_secs(self.http_idle_timeout)
    }

    /// `--ping-interval`, at least 1 s: the silence after which a WebSocket
    /// client is pinged, and the wait for an answer after that.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval.max(1))
    }

    /// `--resume-grace`: how long a vanished WebSocket client's session is
    /// held for it to resume.
    pub fn resume_grace(&self) -> Duration {
        Duration::from_secs(self.resume_grace)
    }

    /// Whether the port speaks TLS (`--tls-cert` or `--tls-self-signed`).
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls_self_signed
    }

    /// `--line-idle-timeout`: the silence after which a line client is
    /// dropped; `None` (off) when not given.
    pub fn line_idle(&self) -> Option<Duration> {
        self.line_idle_timeout.map(Duration::from_secs)
    }
}
