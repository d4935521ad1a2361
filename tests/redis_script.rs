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
