//! Routing as data: which answer a request's method and path lead to.
//!
//! [`Route::parse`] is the one place a method and a path are matched. It
//! reads two tables: [`ASSETS`], the files of the chat page, and the
//! endpoints beside them. The row that dispatches a path also says which
//! methods it takes, so a `405` and its `Allow` header cannot disagree with
//! what is served. Room names in `/api/rooms/ROOM/messages` are decoded with
//! [`decode_path_segment`] and checked here; whatever needs the hub or the
//! configuration (an image's bytes, whether `--ws-echo` is on, the upgrade
//! headers) is the shell's business, in `server::http`.
//!
//! The path is matched as sent (not decoded), without its query.
//!
//! Read next: `server::http`, which matches on [`Route`] values.

use super::{decode_path_segment, error_response, Response};
use crate::hub::names::RoomName;

/// A set of methods a path answers, and the `Allow` header a `405` lists
/// them in.
#[derive(Debug, PartialEq, Eq)]
pub struct Methods {
    /// As sent, case-sensitive (RFC 9110 §9.1).
    pub names: &'static [&'static str],
    /// The same names, for `Allow` (RFC 9110 §10.2.1).
    pub allow: &'static str,
}

impl Methods {
    /// Whether `method` (as sent, case-sensitive) is one of
    /// [`names`](Methods::names).
    pub fn accepts(&self, method: &str) -> bool {
        self.names.contains(&method)
    }
}

/// `HEAD` works wherever `GET` does (PROTOCOL.md "HTTP"): every route
/// natter serves takes these two.
pub const GET_HEAD: Methods = Methods {
    names: &["GET", "HEAD"],
    allow: "GET, HEAD",
};

/// A file of the chat page, carried inside the binary.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// The paths it is served at.
    pub paths: &'static [&'static str],
    /// Its `Content-Type`, with `charset=utf-8` for text.
    pub content_type: &'static str,
    /// The file's bytes, taken from `web/` at build time.
    pub body: &'static [u8],
}

/// One of the page's JavaScript modules, `web/NAME` served at `/NAME`.
/// Module scripts need a JavaScript MIME type (the HTML standard refuses
/// any other), and `script-src 'self'` lets the page import them.
macro_rules! module {
    ($name:literal) => {
        Asset {
            paths: &[concat!("/", $name)],
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!(concat!("../../../web/", $name)),
        }
    };
}

/// The chat page and its assets, all answering [`GET_HEAD`]. `app.js` is
/// the entry module; it imports the others (docs/ARCHITECTURE.md, "The
/// chat page"). Every `.js` file in `web/` is listed here, which
/// `tests/http.rs` checks (and that `index.html` preloads each one).
pub static ASSETS: [Asset; 20] = [
    Asset {
        paths: &["/", "/index.html"],
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../../web/index.html"),
    },
    Asset {
        paths: &["/style.css"],
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../web/style.css"),
    },
    module!("app.js"),
    module!("util.js"),
    module!("protocol.js"),
    module!("room.js"),
    module!("session.js"),
    module!("dom.js"),
    module!("state.js"),
    module!("view.js"),
    module!("toolbar.js"),
    module!("chat.js"),
    module!("composer.js"),
    module!("images.js"),
    module!("landing.js"),
    module!("roombar.js"),
    module!("search.js"),
    // `/loop`: the loop's own figures, live (docs/ARCHITECTURE.md, "The
    // loop, live"); a page of its own, sharing nothing with the chat's.
    Asset {
        paths: &["/loop"],
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../../web/loop/index.html"),
    },
    Asset {
        paths: &["/loop/loop.css"],
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../web/loop/loop.css"),
    },
    module!("loop/loop.js"),
];

impl Asset {
    /// Whether it is part of `/loop`, which `--private-stats` keeps for
    /// loopback like `/api/stats` and `/metrics`.
    pub fn is_loop_page(&self) -> bool {
        self.paths
            .iter()
            .any(|p| *p == "/loop" || p.starts_with("/loop/"))
    }
}

/// What a request leads to, once its method and path are known good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// A file of the page, from [`ASSETS`].
    Asset(&'static Asset),
    /// `/healthz`.
    Healthz,
    /// `/metrics`.
    Metrics,
    /// `/api/stats`.
    Stats,
    /// `/api/rooms`.
    Rooms,
    /// `/api/rooms/ROOM/messages`, the room decoded and checked.
    RoomMessages(RoomName),
    /// `/api/rooms/ROOM/search`, the room decoded and checked.
    RoomSearch(RoomName),
    /// `/media/ID`, the id as sent (possibly empty): the shell checks its
    /// form and looks it up.
    Media(&'a str),
    /// `/ws`: the chat's WebSocket. The shell checks the upgrade itself.
    WebSocket,
    /// `/echo`: the echo WebSocket, which only exists with `--ws-echo`; the
    /// shell answers [`RouteError::NotFound`] without it.
    Echo,
}

/// Why a request leads to no [`Route`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// 404: no route has this path.
    NotFound,
    /// 405: the path is served, but not to this method.
    MethodNotAllowed {
        /// The methods the path does take, for the `Allow` header a 405
        /// must carry (RFC 9110 §15.5.6): [`Methods::allow`].
        allow: &'static str,
    },
    /// 400: `/api/rooms/ROOM/messages` whose ROOM, once decoded, is not a
    /// room name (or not UTF-8).
    InvalidRoom,
}

impl RouteError {
    /// The status code it is answered with: 404, 405 or 400.
    pub fn status(&self) -> u16 {
        match self {
            RouteError::NotFound => 404,
            RouteError::MethodNotAllowed { .. } => 405,
            RouteError::InvalidRoom => 400,
        }
    }

    /// The answer, rendered like every other error page; a `405` lists the
    /// methods in `Allow`.
    pub fn response(&self) -> Response {
        match self {
            RouteError::NotFound => error_response(404, "no such page"),
            RouteError::MethodNotAllowed { allow } => {
                let detail = match allow.rsplit_once(", ") {
                    Some((most, last)) => format!("only {most} and {last} are served here"),
                    None => format!("only {allow} is served here"),
                };
                error_response(405, &detail).with_header("Allow", *allow)
            }
            RouteError::InvalidRoom => error_response(400, "invalid room name"),
        }
    }
}

/// How a row matches a path.
enum Pattern {
    /// This path exactly.
    Exact(&'static str),
    /// Every path that starts with this prefix; the rest goes to the route.
    Under(&'static str),
}

/// Where a row leads, before the rest of a path is read.
#[derive(Clone, Copy)]
enum Target {
    Healthz,
    Metrics,
    Stats,
    Rooms,
    RoomMessages,
    Media,
    WebSocket,
    Echo,
}

/// One row of the endpoint table.
struct Row {
    pattern: Pattern,
    target: Target,
    methods: &'static Methods,
    /// A wrong method is answered like an unknown path, not with a `405`
    /// (see [`ROWS`]).
    hidden: bool,
}

const fn row(pattern: Pattern, target: Target) -> Row {
    Row {
        pattern,
        target,
        methods: &GET_HEAD,
        hidden: false,
    }
}

/// Every endpoint besides [`ASSETS`], in the order they are tried.
///
/// `/api/rooms/` claims every path under it: a wrong method there is a
/// `405` even where `GET` finds no route (`/api/rooms/lobby/other`), as it
/// always has been. `/echo` is hidden: it exists only with `--ws-echo`,
/// which this table cannot see, so a wrong method never reveals it (it is
/// a `404`, with the flag or without).
static ROWS: [Row; 8] = [
    row(Pattern::Exact("/ws"), Target::WebSocket),
    row(Pattern::Exact("/healthz"), Target::Healthz),
    row(Pattern::Exact("/metrics"), Target::Metrics),
    row(Pattern::Exact("/api/rooms"), Target::Rooms),
    row(Pattern::Exact("/api/stats"), Target::Stats),
    row(Pattern::Under("/api/rooms/"), Target::RoomMessages),
    row(Pattern::Under("/media/"), Target::Media),
    Row {
        hidden: true,
        ..row(Pattern::Exact("/echo"), Target::Echo)
    },
];

impl<'a> Route<'a> {
    /// The route for `method` (as sent) on `path` (the request target
    /// before any `?`, not decoded): the only place paths are matched.
    /// A wrong method is found before a bad room name.
    pub fn parse(method: &str, path: &'a str) -> Result<Route<'a>, RouteError> {
        if let Some(asset) = ASSETS.iter().find(|a| a.paths.contains(&path)) {
            check_method(&GET_HEAD, false, method)?;
            return Ok(Route::Asset(asset));
        }
        let (row, rest) = ROWS
            .iter()
            .find_map(|row| {
                let rest = match row.pattern {
                    Pattern::Exact(p) => (path == p).then_some(""),
                    Pattern::Under(prefix) => path.strip_prefix(prefix),
                };
                rest.map(|rest| (row, rest))
            })
            .ok_or(RouteError::NotFound)?;
        check_method(row.methods, row.hidden, method)?;
        Ok(match row.target {
            Target::Healthz => Route::Healthz,
            Target::Metrics => Route::Metrics,
            Target::Stats => Route::Stats,
            Target::Rooms => Route::Rooms,
            Target::WebSocket => Route::WebSocket,
            Target::Echo => Route::Echo,
            Target::Media => Route::Media(rest),
            Target::RoomMessages => {
                let (room, make): (&str, fn(RoomName) -> Route<'a>) =
                    match rest.strip_suffix("/messages") {
                        Some(room) => (room, Route::RoomMessages),
                        None => (
                            rest.strip_suffix("/search").ok_or(RouteError::NotFound)?,
                            Route::RoomSearch,
                        ),
                    };
                decode_path_segment(room)
                    .and_then(|room| RoomName::parse(&room).ok())
                    .map(make)
                    .ok_or(RouteError::InvalidRoom)?
            }
        })
    }
}

fn check_method(methods: &'static Methods, hidden: bool, method: &str) -> Result<(), RouteError> {
    if methods.accepts(method) {
        Ok(())
    } else if hidden {
        Err(RouteError::NotFound)
    } else {
        Err(RouteError::MethodNotAllowed {
            allow: methods.allow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRONG_METHODS: [&str; 8] = [
        "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "get",
    ];

    fn room(name: &str) -> Route<'static> {
        Route::RoomMessages(RoomName::parse(name).expect("room name"))
    }

    fn asset(path: &str) -> &'static Asset {
        ASSETS
            .iter()
            .find(|a| a.paths[0] == path)
            .expect("an asset")
    }

    fn not_allowed() -> RouteError {
        RouteError::MethodNotAllowed { allow: "GET, HEAD" }
    }

    #[test]
    fn every_route_answers_get_and_head() {
        let cases: Vec<(&str, Route<'static>)> = vec![
            ("/", Route::Asset(asset("/"))),
            ("/index.html", Route::Asset(asset("/"))),
            ("/app.js", Route::Asset(asset("/app.js"))),
            ("/protocol.js", Route::Asset(asset("/protocol.js"))),
            ("/style.css", Route::Asset(asset("/style.css"))),
            ("/ws", Route::WebSocket),
            ("/echo", Route::Echo),
            ("/healthz", Route::Healthz),
            ("/metrics", Route::Metrics),
            ("/api/stats", Route::Stats),
            ("/api/rooms", Route::Rooms),
            ("/api/rooms/lobby/messages", room("lobby")),
            (
                "/api/rooms/%23Lobby/search",
                Route::RoomSearch(RoomName::parse("lobby").expect("room name")),
            ),
            ("/media/0123abcd", Route::Media("0123abcd")),
            ("/media/", Route::Media("")),
            ("/media/../index.html", Route::Media("../index.html")),
        ];
        for (path, want) in cases {
            for method in ["GET", "HEAD"] {
                assert_eq!(
                    Route::parse(method, path),
                    Ok(want.clone()),
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn assets_carry_their_type_and_bytes() {
        let Ok(Route::Asset(page)) = Route::parse("GET", "/") else {
            panic!("no page");
        };
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        assert_eq!(page.body, include_bytes!("../../../web/index.html"));
        let Ok(Route::Asset(js)) = Route::parse("GET", "/app.js") else {
            panic!("no script");
        };
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        let Ok(Route::Asset(css)) = Route::parse("HEAD", "/style.css") else {
            panic!("no style");
        };
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        // Every module of the page is JavaScript, at one path of its own.
        for asset in &ASSETS {
            let is_js = asset.paths.iter().any(|p| p.ends_with(".js"));
            assert_eq!(
                is_js,
                asset.content_type == "text/javascript; charset=utf-8",
                "{:?}",
                asset.paths
            );
            if is_js {
                assert_eq!(asset.paths.len(), 1, "{:?}", asset.paths);
                assert!(!asset.body.is_empty(), "{:?}", asset.paths);
            }
        }
    }

    #[test]
    fn wrong_methods_are_405_with_allow() {
        let paths = [
            "/",
            "/index.html",
            "/app.js",
            "/protocol.js",
            "/style.css",
            "/ws",
            "/healthz",
            "/metrics",
            "/api/stats",
            "/api/rooms",
            "/api/rooms/lobby/messages",
            // The method is checked before the room name.
            "/api/rooms/%ff/messages",
            // Everything under /api/rooms/ and /media/ is claimed.
            "/api/rooms/lobby/other",
            "/api/rooms/",
            "/media/",
            "/media/nothex",
        ];
        for path in paths {
            for method in WRONG_METHODS {
                assert_eq!(
                    Route::parse(method, path),
                    Err(not_allowed()),
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn the_echo_endpoint_is_never_revealed_by_a_405() {
        for method in WRONG_METHODS {
            assert_eq!(
                Route::parse(method, "/echo"),
                Err(RouteError::NotFound),
                "{method}"
            );
        }
    }

    #[test]
    fn unknown_paths_are_404_whatever_the_method() {
        let paths = [
            "",
            "*",
            "/nope",
            "//",
            "/healthz/",
            "/index.htm",
            "/app%2Ejs",
            "/WS",
            "/echo/",
            "/api",
            "/api/",
            "/api/roomsx",
            "/api/stats/",
            "/media",
            "/mediax/1",
            "/static/app.js",
            "/web/app.js",
            "/protocol",
            "/package.json",
        ];
        for path in paths {
            for method in ["GET", "HEAD"].iter().chain(&WRONG_METHODS) {
                assert_eq!(
                    Route::parse(method, path),
                    Err(RouteError::NotFound),
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn get_under_api_rooms_needs_the_messages_suffix() {
        for path in [
            "/api/rooms/",
            "/api/rooms/lobby",
            "/api/rooms/lobby/",
            "/api/rooms/lobby/other",
            "/api/rooms/messages",
            "/api/rooms/lobby/messages/",
        ] {
            assert_eq!(
                Route::parse("GET", path),
                Err(RouteError::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn room_names_are_percent_decoded_and_checked() {
        let good = [
            ("/api/rooms/lobby/messages", "lobby"),
            ("/api/rooms/LOBBY/messages", "lobby"),
            ("/api/rooms/%23lobby/messages", "lobby"),
            ("/api/rooms/lob%62y/messages", "lobby"),
            ("/api/rooms/%4C%6f%42by/messages", "lobby"),
            ("/api/rooms/a_b-c/messages", "a_b-c"),
            ("/api/rooms/a%2Db/messages", "a-b"),
        ];
        for (path, want) in good {
            assert_eq!(Route::parse("GET", path), Ok(room(want)), "{path}");
        }
        let bad = [
            // Bad percent-encoding: kept as sent, and `%` is no room byte.
            "/api/rooms/%/messages",
            "/api/rooms/%2/messages",
            "/api/rooms/%zz/messages",
            "/api/rooms/%+1/messages",
            "/api/rooms/%-1/messages",
            "/api/rooms/%%31/messages",
            // Decoded, but not UTF-8 or not a room name.
            "/api/rooms/%ff/messages",
            "/api/rooms/%C3/messages",
            "/api/rooms/%C3%A9/messages",
            "/api/rooms/%01/messages",
            "/api/rooms/a%20b/messages",
            "/api/rooms/a%2Fb/messages",
            "/api/rooms/a+b/messages",
            "/api/rooms/%2B1/messages",
            "/api/rooms/%23/messages",
            "/api/rooms/##lobby/messages",
            // Empty, too long, more than one segment.
            "/api/rooms//messages",
            "/api/rooms/a/b/messages",
            "/api/rooms/lobby/messages/messages",
        ];
        for path in bad {
            assert_eq!(
                Route::parse("GET", path),
                Err(RouteError::InvalidRoom),
                "{path}"
            );
        }
        let long = format!("/api/rooms/{}/messages", "a".repeat(33));
        assert_eq!(Route::parse("GET", &long), Err(RouteError::InvalidRoom));
        let max = format!("/api/rooms/{}/messages", "a".repeat(32));
        assert_eq!(Route::parse("HEAD", &max), Ok(room(&"a".repeat(32))));
    }

    #[test]
    fn errors_render_like_every_error_page() {
        let r = RouteError::NotFound.response();
        assert_eq!(r.status, 404);
        assert_eq!(&r.body[..], b"404 Not Found: no such page\n");
        assert!(!r.headers.iter().any(|(n, _)| *n == "Allow"));
        let r = not_allowed().response();
        assert_eq!(r.status, 405);
        assert_eq!(
            &r.body[..],
            b"405 Method Not Allowed: only GET and HEAD are served here\n"
        );
        assert!(r.headers.contains(&("Allow", "GET, HEAD".to_string())));
        let r = RouteError::InvalidRoom.response();
        assert_eq!(r.status, 400);
        assert_eq!(&r.body[..], b"400 Bad Request: invalid room name\n");
        for e in [RouteError::NotFound, not_allowed(), RouteError::InvalidRoom] {
            assert_eq!(e.response().status, e.status());
        }
    }

    #[test]
    fn allow_lists_exactly_the_methods_taken() {
        assert_eq!(GET_HEAD.allow, GET_HEAD.names.join(", "));
        for row in &ROWS {
            assert_eq!(row.methods.allow, row.methods.names.join(", "));
        }
    }

    #[test]
    fn no_path_is_claimed_twice() {
        let mut exact: Vec<&str> = ASSETS
            .iter()
            .flat_map(|a| a.paths.iter().copied())
            .collect();
        for row in &ROWS {
            if let Pattern::Exact(p) = row.pattern {
                exact.push(p);
            }
        }
        let n = exact.len();
        exact.sort_unstable();
        exact.dedup();
        assert_eq!(exact.len(), n, "a path is listed twice");
        for row in &ROWS {
            if let Pattern::Under(prefix) = row.pattern {
                assert!(prefix.ends_with('/'), "{prefix}");
                for p in &exact {
                    assert!(!p.starts_with(prefix), "{p} is under {prefix}");
                }
            }
        }
    }
}
