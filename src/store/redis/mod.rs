//! Redis (issue 18, PROTOCOL-2 section 6): several natter processes sharing
//! one chat. A store that answers later: the shell sends the turn's
//! commands in one pipelined write and hands the replies back when they
//! come, so the hub's port fits it as it fits SQLite.
//!
//! What is here so far, all without sockets or a clock (the shell will own
//! the connections on its `Poll` and pass the time in):
//!
//! - [`url`]: `--redis redis://[user:password@]host:port[/db]`;
//! - [`script`]: the atomic publish, one Lua script (`publish.lua`): a
//!   repeated `cid` answered with its seq, else the room's next seq, the
//!   entry appended to the room's stream and published, all at once;
//! - [`setup`]: the durability check at start (`appendonly`, `appendfsync`);
//! - [`link`]: one connection's bookkeeping: replies matched to the
//!   commands in the order they were sent, and reconnecting with backoff
//!   (what is failed when the connection drops, when to try again).
//!
//! The codec is `proto::resp`.

pub mod changes;
pub mod entry;
pub mod feed;
pub mod link;
pub mod ops;
pub mod presence;
pub mod script;
pub mod setup;
pub mod url;
