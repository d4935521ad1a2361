//! The atomic publish script (`src/store/redis/publish.lua`) against a real
//! `redis-server`: seqs gap-free under concurrent publishers, a repeated
//! `cid` answered with its first seq and nothing else done, the stream and
//! the channel as the script says (read with `redis-cli`, an independent
//! client), `NOSCRIPT` after a flush, and a lost counter that never makes a
//! seq repeat.

mod common;

use common::{RedisProc, RespClient};
use natter::proto::resp::Value;
use natter::store::redis::script::{
    encode_load, encode_publish, is_noscript, parse_publish, parse_push, publish_sha, Entry,
    Published,
};
use natter::store::redis::setup::{durability_warning, encode_durability_query};

const CHANNEL: &str = "natter:events";

fn entry<'a>(room: &'a str, payload: &'a [u8], cid: Option<&'a str>) -> Entry<'a> {
    Entry {
        room,
        payload,
        cid_key: cid,
        keep: 100_000,
        channel: CHANNEL,
        cid_ttl: 3600,
    }
}

fn load(c: &mut RespClient) -> String {
    let mut out = Vec::new();
    encode_load(&mut out);
    c.send(&out);
    let sha = c.next();
    let sha = String::from_utf8(sha.as_bytes().expect("a sha").to_vec()).expect("hex");
    assert_eq!(
        sha,
        publish_sha(),
        "SCRIPT LOAD answers the sha natter computes"
    );
    sha
}

fn publish(c: &mut RespClient, sha: &str, e: &Entry<'_>) -> Published {
    let mut out = Vec::new();
    encode_publish(&mut out, sha, e);
    c.send(&out);
    parse_publish(&c.next()).unwrap_or_else(|err| panic!("publish: {err}"))
}

#[test]
fn seqs_stream_channel_and_repeated_cids() {
    let redis = RedisProc::start();
    let mut c = redis.client();
    let sha = load(&mut c);
    // A subscriber on its own connection, as another process would be.
    let mut sub = redis.client();
    sub.send(b"*2\r\n$9\r\nSUBSCRIBE\r\n$13\r\nnatter:events\r\n");
    let ack = sub.next();
    assert!(
        matches!(&ack, Value::Array(Some(v)) if v[0].as_bytes() == Some(b"subscribe")),
        "{ack:?}"
    );

    assert_eq!(
        publish(
            &mut c,
            &sha,
            &entry("lobby", b"one", Some("natter:cid:{s1}:a"))
        ),
        Published::New(1)
    );
    assert_eq!(
        publish(&mut c, &sha, &entry("lobby", b"two", None)),
        Published::New(2)
    );
    assert_eq!(
        publish(&mut c, &sha, &entry("dev", b"other room", None)),
        Published::New(1)
    );
    // The same cid again: its seq, and nothing stored or published.
    assert_eq!(
        publish(
            &mut c,
            &sha,
            &entry("lobby", b"one again", Some("natter:cid:{s1}:a"))
        ),
        Published::Repeat(1, Some(bytes::Bytes::from_static(b"one")))
    );
    assert_eq!(
        publish(
            &mut c,
            &sha,
            &entry("lobby", b"three", Some("natter:cid:{s1}:b"))
        ),
        Published::New(3)
    );

    // The pushes, in order, carrying the seq and the entry.
    let mut pushed = Vec::new();
    for _ in 0..4 {
        let v = sub.next();
        let p = parse_push(&v).unwrap_or_else(|| panic!("not a published entry: {v:?}"));
        assert_eq!(&p.channel[..], CHANNEL.as_bytes());
        let room = String::from_utf8_lossy(&p.room).into_owned();
        pushed.push((
            p.seq,
            room,
            String::from_utf8_lossy(&p.payload).into_owned(),
        ));
    }
    let want = [
        (1, "lobby", "one"),
        (2, "lobby", "two"),
        (1, "dev", "other room"),
        (3, "lobby", "three"),
    ];
    assert_eq!(
        pushed,
        want.map(|(s, r, p)| (s, r.to_string(), p.to_string()))
    );

    // The stream, read by redis-cli: ids seq-0, field e.
    let log = redis.cli(&["XRANGE", "natter:{lobby}:log", "-", "+"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        ["1-0", "e", "one", "2-0", "e", "two", "3-0", "e", "three"],
        "{log}"
    );
    assert_eq!(redis.cli(&["GET", "natter:{lobby}:seq"]).trim(), "3");
    let ttl: i64 = redis
        .cli(&["TTL", "natter:cid:{s1}:a"])
        .trim()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&ttl), "{ttl}");
}

#[test]
fn noscript_after_a_flush_then_load_again() {
    let redis = RedisProc::start();
    let mut c = redis.client();
    let sha = load(&mut c);
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]).as_bytes(), Some(&b"OK"[..]));
    let mut out = Vec::new();
    encode_publish(&mut out, &sha, &entry("lobby", b"x", None));
    c.send(&out);
    let reply = c.next();
    assert!(is_noscript(&reply), "{reply:?}");
    // Nothing happened: the counter was not touched.
    assert_eq!(redis.cli(&["EXISTS", "natter:{lobby}:seq"]).trim(), "0");
    load(&mut c);
    assert_eq!(
        publish(&mut c, &sha, &entry("lobby", b"x", None)),
        Published::New(1)
    );
}

#[test]
fn a_lost_counter_never_makes_a_seq_repeat() {
    let redis = RedisProc::start();
    let mut c = redis.client();
    let sha = load(&mut c);
    for i in 1..=5u64 {
        assert_eq!(
            publish(&mut c, &sha, &entry("lobby", b"m", None)),
            Published::New(i)
        );
    }
    redis.cli(&["DEL", "natter:{lobby}:seq"]);
    assert_eq!(
        publish(&mut c, &sha, &entry("lobby", b"after", None)),
        Published::New(6)
    );
}

#[test]
fn concurrent_publishers_get_gap_free_seqs() {
    const EACH: usize = 500;
    let redis = RedisProc::start();
    let port = redis.port;
    let sha = load(&mut redis.client());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let sha = sha.clone();
            std::thread::spawn(move || {
                let mut c = RespClient::try_connect(port).expect("connect");
                // Pipelined, as natter sends a turn's commands: all of them
                // in one write, then the replies.
                let mut out = Vec::new();
                let payloads: Vec<String> = (0..EACH).map(|i| format!("w{w}m{i}")).collect();
                for p in &payloads {
                    encode_publish(&mut out, &sha, &entry("busy", p.as_bytes(), None));
                }
                c.send(&out);
                (0..EACH)
                    .map(|_| match parse_publish(&c.next()) {
                        Ok(Published::New(seq)) => seq,
                        other => panic!("{other:?}"),
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = Vec::new();
    for w in workers {
        let seqs = w.join().expect("worker");
        // Each publisher's own seqs go up (its commands ran in order).
        assert!(seqs.windows(2).all(|p| p[0] < p[1]));
        all.extend(seqs);
    }
    all.sort_unstable();
    let want: Vec<u64> = (1..=(4 * EACH) as u64).collect();
    assert_eq!(all, want, "every seq from 1 to {} exactly once", 4 * EACH);
    assert_eq!(
        redis.cli(&["XLEN", "natter:{busy}:log"]).trim(),
        (4 * EACH).to_string()
    );
}

#[test]
fn the_durability_check_reads_a_real_redis() {
    let ask = |redis: &RedisProc| {
        let mut c = redis.client();
        let mut out = Vec::new();
        encode_durability_query(&mut out);
        c.send(&out);
        let (a, f) = (c.next(), c.next());
        durability_warning(&a, &f)
    };
    assert_eq!(
        ask(&RedisProc::start()),
        None,
        "appendonly yes, appendfsync always"
    );
    let lax = RedisProc::start_with(&["--appendonly", "no"]);
    let w = ask(&lax).expect("a warning");
    assert!(w.contains("appendonly no and appendfsync everysec"), "{w}");
}

/// Runs `encode` (one script call) on `c`, loading `source` first.
fn run_script(c: &mut RespClient, source: &str, encode: impl FnOnce(&mut Vec<u8>)) -> Value {
    let mut out = Vec::new();
    natter::store::redis::script::encode_load_source(&mut out, source);
    encode(&mut out);
    c.send(&out);
    let _sha = c.next();
    c.next()
}

#[test]
fn a_session_claimed_by_another_process_is_not_written_over_by_the_one_that_had_it() {
    use natter::hub::names::RoomName;
    use natter::hub::port::{Notice, SessionState};
    use natter::store::redis::presence::{encode_claim, encode_notice, CLAIM, SESS};

    let redis = RedisProc::start();
    let mut c = redis.client();
    let room = |r: &str| RoomName::parse(r).expect("a room");
    let state = |rooms: &[&str]| SessionState {
        nick: "Ann".into(),
        rooms: rooms.iter().map(|r| room(r)).collect(),
        guest: "g:00000000000000aa".into(),
        account: None,
    };
    let notice = |state: Option<SessionState>, held: bool| Notice::Session {
        hash: "h1".into(),
        state,
        held,
    };
    let write = |c: &mut RespClient, proc: &str, n: &Notice| {
        run_script(c, SESS, |out| {
            assert_eq!(encode_notice(out, proc, n, 60_000), 1, "one command");
        })
    };
    let rooms_of = |c: &mut RespClient| -> String {
        let v = c.cmd(&["GET", "natter:sess:h1"]);
        match v.as_bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => "gone".into(),
        }
    };

    // p1 has the session, in two rooms, then holds it for a resume.
    assert_eq!(
        write(&mut c, "p1", &notice(Some(state(&["a", "b"])), false)),
        Value::Int(1)
    );
    assert_eq!(
        write(&mut c, "p1", &notice(Some(state(&["a", "b"])), true)),
        Value::Int(1)
    );
    let ttl = c.cmd(&["PTTL", "natter:sess:h1"]);
    assert!(
        matches!(ttl, Value::Int(ms) if ms > 0 && ms <= 60_000),
        "held: {ttl:?}"
    );
    assert_eq!(
        c.cmd(&["SISMEMBER", "natter:sessof:p1", "h1"]),
        Value::Int(1)
    );

    // p2 claims it, and its client leaves room b.
    let claimed = run_script(&mut c, CLAIM, |out| encode_claim(out, "p2", "h1"));
    assert!(claimed.as_bytes().is_some(), "claimed: {claimed:?}");
    assert_eq!(
        write(&mut c, "p2", &notice(Some(state(&["a"])), false)),
        Value::Int(1)
    );

    // p1, late, writes what it knew, then that the session is gone:
    // neither lands.
    assert_eq!(
        write(&mut c, "p1", &notice(Some(state(&["a", "b"])), true)),
        Value::Int(0)
    );
    assert_eq!(write(&mut c, "p1", &notice(None, false)), Value::Int(0));
    let now = rooms_of(&mut c);
    assert!(
        now.contains(r#""p":"p2""#) && now.contains(r#""rooms":["a"]"#),
        "{now}"
    );
    assert_eq!(
        c.cmd(&["PTTL", "natter:sess:h1"]),
        Value::Int(-1),
        "no expiry"
    );
    assert_eq!(
        c.cmd(&["SISMEMBER", "natter:sessof:p1", "h1"]),
        Value::Int(0)
    );
    assert_eq!(
        c.cmd(&["SISMEMBER", "natter:sessof:p2", "h1"]),
        Value::Int(1)
    );

    // p2 ends it.
    assert_eq!(write(&mut c, "p2", &notice(None, false)), Value::Int(1));
    assert_eq!(rooms_of(&mut c), "gone");
    assert_eq!(
        c.cmd(&["SISMEMBER", "natter:sessof:p2", "h1"]),
        Value::Int(0)
    );
}
