use super::*;

use std::rc::Rc;

use crate::hub::event::{Entry, Presence, Typing};

fn room(s: &str) -> RoomName {
    RoomName::parse(s).unwrap()
}

fn ok(text: &str) -> Request {
    parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn refused(text: &str) -> (ErrorCode, Option<String>) {
    let r = parse(text).expect_err(text);
    (r.error.code, r.r#ref)
}

#[test]
fn every_request_type() {
    let cases: Vec<(&str, Command)> = vec![
        (
            r#"{"type":"nick","nick":"alice"}"#,
            Command::Nick("alice".into()),
        ),
        (
            r##"{"type":"join","room":"#Lobby"}"##,
            Command::Join {
                room: room("lobby"),
                since: None,
            },
        ),
        (
            r#"{"type":"join","room":"lobby","since":117}"#,
            Command::Join {
                room: room("lobby"),
                since: Some(117),
            },
        ),
        (r#"{"type":"create"}"#, Command::Create),
        (
            r#"{"type":"leave","room":"dev"}"#,
            Command::Leave(Some(room("dev"))),
        ),
        (
            r#"{"type":"say","room":"lobby","text":"hi","cid":"k3j9"}"#,
            Command::Say {
                reply_to: None,
                room: Some(room("lobby")),
                text: "hi".into(),
                action: false,
                cid: Some("k3j9".into()),
            },
        ),
        (
            r#"{"type":"say","room":"lobby","text":"waves","action":true}"#,
            Command::Say {
                reply_to: None,
                room: Some(room("lobby")),
                text: "waves".into(),
                action: true,
                cid: None,
            },
        ),
        (
            r#"{"type":"dm","to":"bob","text":"psst"}"#,
            Command::Dm {
                to: "bob".into(),
                text: "psst".into(),
                cid: None,
            },
        ),
        (
            r#"{"type":"history","room":"lobby","before":120,"limit":50}"#,
            Command::History {
                room: Some(room("lobby")),
                page: Page {
                    before: Some(120),
                    after: None,
                    limit: 50,
                },
            },
        ),
        (
            r#"{"type":"history","room":"lobby","after":117}"#,
            Command::History {
                room: Some(room("lobby")),
                page: Page {
                    before: None,
                    after: Some(117),
                    limit: DEFAULT_PAGE,
                },
            },
        ),
        (
            r#"{"type":"history","limit":100000}"#,
            Command::History {
                room: None,
                page: Page {
                    before: None,
                    after: None,
                    limit: MAX_HISTORY_PAGE,
                },
            },
        ),
        (
            r#"{"type":"typing","room":"lobby"}"#,
            Command::Typing(room("lobby")),
        ),
        (r#"{"type":"rooms"}"#, Command::Rooms),
        (
            r#"{"type":"who","room":"lobby"}"#,
            Command::Who(Some(room("lobby"))),
        ),
        (r#"{"type":"who"}"#, Command::Who(None)),
    ];
    for (text, want) in cases {
        let got = ok(text);
        assert_eq!(got.command, want, "{text}");
        assert_eq!(got.r#ref, None);
    }
}

#[test]
fn ref_is_kept_and_unknown_fields_are_ignored() {
    let r = ok(r#"{"type":"rooms","ref":"r1","extra":[1,2,{"x":null}]}"#);
    assert_eq!(r.r#ref.as_deref(), Some("r1"));
    assert_eq!(r.command, Command::Rooms);
}

#[test]
fn errors_carry_their_code_and_the_ref() {
    assert_eq!(refused("not json"), (ErrorCode::BadJson, None));
    assert_eq!(refused(r#"{"type":"say""#), (ErrorCode::BadJson, None));
    assert_eq!(refused("[1,2]"), (ErrorCode::BadRequest, None));
    assert_eq!(refused(r#""say""#), (ErrorCode::BadRequest, None));
    assert_eq!(
        refused(r#"{"ref":"a"}"#),
        (ErrorCode::BadRequest, Some("a".into()))
    );
    assert_eq!(
        refused(r#"{"type":7,"ref":"a"}"#),
        (ErrorCode::BadRequest, Some("a".into()))
    );
    assert_eq!(
        refused(r#"{"type":"say","ref":5}"#),
        (ErrorCode::BadRequest, None)
    );
    assert_eq!(
        refused(r#"{"type":"dance","ref":"b"}"#),
        (ErrorCode::UnknownType, Some("b".into()))
    );
    let r = Some("c".to_string());
    for (text, code) in [
        (
            r#"{"type":"say","room":"lobby","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"lobby","text":5,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","text":"hi","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"no way","text":"hi","ref":"c"}"#,
            ErrorCode::RoomInvalid,
        ),
        (
            r#"{"type":"say","room":"a","text":"x","action":"yes","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"a","text":"x","cid":1,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"join","room":"a","since":-1,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"join","room":"a","since":1.5,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"history","room":"a","limit":"9","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"nick","ref":"c"}"#, ErrorCode::BadRequest),
        (
            r#"{"type":"dm","to":"bob","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"typing","ref":"c"}"#, ErrorCode::BadRequest),
        (
            r#"{"type":"image","room":"a","data":"!!not base64","ref":"c"}"#,
            ErrorCode::BadImage,
        ),
    ] {
        assert_eq!(refused(text), (code, r.clone()), "{text}");
    }
}

fn json(event: &Event) -> serde_json::Value {
    let bytes = render(event).expect("rendered");
    serde_json::from_slice(&bytes).expect("valid JSON")
}

fn msg(seq: u64, action: bool) -> Rc<Message> {
    Rc::new(Message {
        author: String::new(),
        reply_to: None,
        mentions: Vec::new(),
        edited_ts: None,
        deleted: false,
        reactions: Vec::new(),
        room: room("lobby"),
        seq,
        ts: 1_763_800_000_000,
        from: "alice".into(),
        text: "hi \"there\" \u{1F600}".into(),
        action,
        image: None,
        account: None,
    })
}

#[test]
fn renders_every_event_as_protocol_md_spells_it() {
    use serde_json::json;
    assert_eq!(
        json(&Event::Message(msg(17, false))),
        json!({"type":"message","room":"lobby","seq":17,"ts":1_763_800_000_000u64,
               "from":"alice","text":"hi \"there\" \u{1F600}"})
    );
    assert_eq!(json(&Event::Message(msg(3, true)))["action"], json!(true));
    assert_eq!(
        json(&Event::Reply(
            Reply::Sent(msg(4, false), Some("k3j9".into())),
            Some("r".into())
        )),
        json!({"type":"message","room":"lobby","seq":4,"ts":1_763_800_000_000u64,
               "from":"alice","text":"hi \"there\" \u{1F600}","cid":"k3j9","ref":"r"})
    );
    let presence = |kind| {
        Event::Presence(Rc::new(Presence {
            account: None,
            room: room("lobby"),
            kind,
            nick: "bob".into(),
            ts: 5,
        }))
    };
    assert_eq!(
        json(&presence(PresenceKind::Join)),
        json!({"type":"presence","room":"lobby","event":"join","nick":"bob","ts":5})
    );
    assert_eq!(
        json(&presence(PresenceKind::Leave(LeaveReason::Quit(Some(
            "bye".into()
        ))))),
        json!({"type":"presence","room":"lobby","event":"leave","nick":"bob","ts":5,
               "reason":"quit","message":"bye"})
    );
    for (reason, s) in [
        (LeaveReason::Leave, "leave"),
        (LeaveReason::Quit(None), "quit"),
        (LeaveReason::Disconnect, "disconnect"),
        (LeaveReason::Timeout, "timeout"),
        (LeaveReason::SlowConsumer, "slow_consumer"),
        (LeaveReason::Shutdown, "shutdown"),
    ] {
        let v = json(&presence(PresenceKind::Leave(reason)));
        assert_eq!(v["reason"], json!(s));
        assert!(v.get("message").is_none());
    }
    assert_eq!(
        json(&presence(PresenceKind::Nick {
            old: "alice".into()
        })),
        json!({"type":"presence","room":"lobby","event":"nick","nick":"bob","old":"alice","ts":5})
    );
    let typing = Event::Typing(Rc::new(Typing {
        room: room("dev"),
        nick: "bob".into(),
        ts: 9,
    }));
    assert_eq!(
        json(&typing),
        json!({"type":"typing","room":"dev","nick":"bob","ts":9})
    );
    let dm = Rc::new(Dm {
        account: None,
        from: "alice".into(),
        to: "bob".into(),
        ts: 7,
        text: "psst".into(),
    });
    assert_eq!(
        json(&Event::Dm(dm.clone())),
        json!({"type":"dm","from":"alice","to":"bob","ts":7,"text":"psst"})
    );
    assert_eq!(
        json(&Event::Reply(
            Reply::DmSent(dm, Some("c1".into())),
            Some("r2".into())
        )),
        json!({"type":"dm","from":"alice","to":"bob","ts":7,"text":"psst","cid":"c1","ref":"r2"})
    );
}

#[test]
fn renders_every_reply() {
    use serde_json::json;
    let limits = Limits {
        max_line: 4096,
        max_message: 4000,
        history: 50,
        rate: 10,
        burst: 20,
        max_ws_message: 2_097_152,
        max_image: 1_048_576,
    };
    let reply = |r, rf: Option<&str>| json(&Event::Reply(r, rf.map(str::to_string)));
    assert_eq!(
        reply(
            Reply::Welcome {
                account: None,
                nick: "quiet-heron-42".into(),
                session: Some("tok".into()),
                store_id: "sid".into(),
                limits,
            },
            None
        ),
        json!({"type":"welcome","nick":"quiet-heron-42","server":SERVER,"session":"tok",
               "store_id":"sid","limits":{"max_message":4000,"max_ws_message":2_097_152,
               "max_image":1_048_576,"rate":10,"burst":20,"history":50},"account":null})
    );
    assert!(SERVER.starts_with("natter/"));
    assert_eq!(
        reply(
            Reply::Nick {
                nick: "alice".into()
            },
            Some("n")
        ),
        json!({"type":"nick","nick":"alice","ref":"n"})
    );
    let joined = Reply::Joined {
        info: Default::default(),
        role: crate::hub::event::Role::Member,
        room: room("lobby"),
        members: crate::hub::names::nick_list(&["alice", "bob"]),
        messages: vec![
            Entry::Message(msg(119, false)),
            Entry::Message(msg(120, false)),
        ],
        created: false,
        last_seq: 120,
        gap: false,
        store_id: "sid".into(),
    };
    let v = reply(joined, Some("j"));
    assert_eq!(v["type"], "joined");
    assert_eq!(v["members"], json!(["alice", "bob"]));
    assert_eq!(v["messages"][1]["seq"], 120);
    assert_eq!(v["messages"][1]["type"], "message");
    assert_eq!(v["last_seq"], 120);
    assert_eq!(v["store_id"], "sid");
    assert_eq!(v["ref"], "j");
    assert!(v.get("gap").is_none(), "gap only when true");
    let gap = Reply::Joined {
        info: Default::default(),
        role: crate::hub::event::Role::Member,
        room: room("lobby"),
        members: Vec::new(),
        messages: vec![],
        created: false,
        last_seq: 900,
        gap: true,
        store_id: "sid".into(),
    };
    assert_eq!(reply(gap, None)["gap"], json!(true));
    assert_eq!(
        reply(Reply::Left { room: room("dev") }, None),
        json!({"type":"left","room":"dev"})
    );
    assert_eq!(
        reply(
            Reply::Who {
                room: room("dev"),
                members: crate::hub::names::nick_list(&["a"])
            },
            None
        ),
        json!({"type":"who","room":"dev","members":["a"]})
    );
    assert_eq!(
        reply(
            Reply::Rooms {
                rooms: vec![(room("lobby"), 3)]
            },
            None
        ),
        json!({"type":"rooms","rooms":[{"name":"lobby","members":3}]})
    );
    assert_eq!(
        reply(
            Reply::History {
                room: room("lobby"),
                messages: vec![]
            },
            Some("h")
        ),
        json!({"type":"history","room":"lobby","messages":[],"ref":"h"})
    );
    assert_eq!(
        reply(
            Reply::Error {
                code: ErrorCode::NickTaken,
                message: "bob is taken".into()
            },
            Some("x")
        ),
        json!({"type":"error","code":"nick_taken","message":"bob is taken","ref":"x"})
    );
    for line_only in [
        Reply::Current { room: room("a") },
        Reply::Help(Limits::default()),
        Reply::Bye,
        Reply::Report("*** stats: ...\n".into()),
    ] {
        assert_eq!(render(&Event::Reply(line_only, None)), None);
    }
}

#[test]
fn api_pages() {
    let v: serde_json::Value =
        serde_json::from_slice(&render_page(&room("lobby"), &[msg(1, false)])).unwrap();
    assert_eq!(v["room"], "lobby");
    assert_eq!(v["messages"][0]["seq"], 1);
    let v: serde_json::Value =
        serde_json::from_slice(&render_rooms(&[(room("a"), 2), (room("b"), 1)])).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"rooms":[{"name":"a","members":2},{"name":"b","members":1}]})
    );
}

#[test]
fn image_requests_carry_the_decoded_bytes() {
    let r = ok(r#"{"type":"image","room":"lobby","data":"R0lGODlhAQ==","text":"cap","cid":"i1"}"#);
    assert_eq!(
        r.command,
        Command::Image {
            reply_to: None,
            room: room("lobby"),
            data: b"GIF89a\x01".to_vec(),
            text: Some("cap".into()),
            cid: Some("i1".into()),
            id: String::new(),
        }
    );
    assert_eq!(
        refused(r#"{"type":"image","room":"lobby"}"#).0,
        ErrorCode::BadRequest
    );
}

#[test]
fn an_image_message_names_its_media_url() {
    let mut m = (*msg(9, false)).clone();
    m.image = Some(crate::hub::event::ImageRef {
        id: "ab12".into(),
        mime: "image/png",
        size: 34123,
    });
    let v = json(&Event::Message(Rc::new(m)));
    assert_eq!(
        v["image"],
        serde_json::json!({"url":"/media/ab12","mime":"image/png","size":34123})
    );
}

// ---------------------------------------------------------------------------
// Version 2: accounts and moderation (PROTOCOL-2 sections 1 and 2)
// ---------------------------------------------------------------------------

use crate::hub::command::ModAction;
use crate::hub::event::{AccountChange, BanInfo, ModEvent, ModKind, Role, RoomInfo};

#[test]
fn account_requests() {
    let cases: Vec<(&str, Command)> = vec![
        (
            r#"{"type":"register","password":"correct horse"}"#,
            Command::Register {
                password: "correct horse".into(),
            },
        ),
        (
            r#"{"type":"login","nick":"alice","password":" spaced "}"#,
            Command::Login {
                nick: "alice".into(),
                password: " spaced ".into(),
            },
        ),
        (
            r#"{"type":"login","token":"t0k"}"#,
            Command::LoginToken("t0k".into()),
        ),
        (
            r#"{"type":"login","token":"t0k","password":null}"#,
            Command::LoginToken("t0k".into()),
        ),
        (
            r#"{"type":"login","nick":"alice","password":"pw","token":null}"#,
            Command::Login {
                nick: "alice".into(),
                password: "pw".into(),
            },
        ),
        (r#"{"type":"logout"}"#, Command::Logout),
        (
            r#"{"type":"password","old":"a b","new":"c d e"}"#,
            Command::Password {
                old: "a b".into(),
                new: "c d e".into(),
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text).command, want, "{text}");
    }
    assert_eq!(
        ok(r#"{"type":"logout","ref":"l1"}"#).r#ref.as_deref(),
        Some("l1")
    );
}

#[test]
fn bad_account_requests() {
    let r = Some("c".to_string());
    for text in [
        r#"{"type":"register","ref":"c"}"#,
        r#"{"type":"register","password":123,"ref":"c"}"#,
        r#"{"type":"login","ref":"c"}"#,
        r#"{"type":"login","nick":"alice","ref":"c"}"#,
        r#"{"type":"login","password":"pw","ref":"c"}"#,
        r#"{"type":"login","token":5,"ref":"c"}"#,
        r#"{"type":"login","token":"t","password":"pw","ref":"c"}"#,
        r#"{"type":"password","old":"a","ref":"c"}"#,
        r#"{"type":"password","new":"a","ref":"c"}"#,
        r#"{"type":"password","old":"a","new":false,"ref":"c"}"#,
    ] {
        assert_eq!(refused(text), (ErrorCode::BadRequest, r.clone()), "{text}");
    }
}

fn mod_request(room_name: &str, action: ModAction) -> Command {
    Command::Mod {
        room: Some(room(room_name)),
        action,
    }
}

#[test]
fn mod_requests_for_every_action() {
    let cases: Vec<(&str, ModAction)> = vec![
        (
            r#"{"type":"mod","room":"dev","action":"kick","nick":"bob","reason":"spam"}"#,
            ModAction::Kick {
                nick: "bob".into(),
                reason: Some("spam".into()),
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"kick","nick":"bob"}"#,
            ModAction::Kick {
                nick: "bob".into(),
                reason: None,
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"kick","nick":"bob","reason":"  "}"#,
            ModAction::Kick {
                nick: "bob".into(),
                reason: None,
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"ban","nick":"bob","reason":null}"#,
            ModAction::Ban {
                nick: "bob".into(),
                reason: None,
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"ban","nick":"bob","reason":"x y"}"#,
            ModAction::Ban {
                nick: "bob".into(),
                reason: Some("x y".into()),
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"unban","nick":"bob"}"#,
            ModAction::Unban { nick: "bob".into() },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"mute","nick":"bob","secs":300}"#,
            ModAction::Mute {
                nick: "bob".into(),
                secs: Some(300),
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"mute","nick":"bob"}"#,
            ModAction::Mute {
                nick: "bob".into(),
                secs: None,
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"unmute","nick":"bob"}"#,
            ModAction::Unmute { nick: "bob".into() },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"op","nick":"bob"}"#,
            ModAction::Op { nick: "bob".into() },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"deop","nick":"bob"}"#,
            ModAction::Deop { nick: "bob".into() },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"topic","text":"Rust and chat"}"#,
            ModAction::Topic {
                text: "Rust and chat".into(),
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"topic","text":""}"#,
            ModAction::Topic {
                text: String::new(),
            },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"invite_only","on":true}"#,
            ModAction::InviteOnly { on: true },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"invite_only","on":false}"#,
            ModAction::InviteOnly { on: false },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"invite","nick":"bob"}"#,
            ModAction::Invite { nick: "bob".into() },
        ),
        (
            r#"{"type":"mod","room":"dev","action":"bans"}"#,
            ModAction::Bans,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text).command, mod_request("dev", want), "{text}");
    }
    // The room is validated and lowercased as elsewhere; the ref is kept.
    let r = ok(r##"{"type":"mod","room":"#Dev","action":"bans","ref":"b1"}"##);
    assert_eq!(r.command, mod_request("dev", ModAction::Bans));
    assert_eq!(r.r#ref.as_deref(), Some("b1"));
}

#[test]
fn bad_mod_requests() {
    let r = Some("c".to_string());
    for (text, code) in [
        (
            r#"{"type":"mod","action":"bans","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"no way","action":"bans","ref":"c"}"#,
            ErrorCode::RoomInvalid,
        ),
        (
            r#"{"type":"mod","room":"dev","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":7,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"kick","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"ban","nick":1,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"kick","nick":"bob","reason":5,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"unban","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"mute","secs":5,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"mute","nick":"bob","secs":0,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"mute","nick":"bob","secs":-1,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"mute","nick":"bob","secs":"60","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"unmute","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"op","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"deop","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"topic","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"topic","text":null,"ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"invite_only","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"invite_only","on":"yes","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"mod","room":"dev","action":"invite","ref":"c"}"#,
            ErrorCode::BadRequest,
        ),
    ] {
        assert_eq!(refused(text), (code, r.clone()), "{text}");
    }
    let e = parse(r#"{"type":"mod","room":"dev","action":"smite\u001b","ref":"c"}"#).unwrap_err();
    assert_eq!(e.error.code, ErrorCode::BadRequest);
    assert_eq!(e.r#ref.as_deref(), Some("c"));
    assert!(
        e.error
            .message
            .starts_with("unknown mod action \"smite\u{FFFD}\""),
        "{}",
        e.error.message
    );
}

#[test]
fn welcome_always_says_the_account() {
    let welcome = |account: Option<&str>| {
        json(&Event::Reply(
            Reply::Welcome {
                account: account.map(Into::into),
                nick: "alice".into(),
                session: None,
                store_id: "sid".into(),
                limits: Limits::default(),
            },
            None,
        ))
    };
    assert_eq!(welcome(Some("alice"))["account"], "alice");
    let guest = welcome(None);
    assert_eq!(guest.get("account"), Some(&serde_json::Value::Null));
}

#[test]
fn joined_carries_the_room_settings_and_the_role() {
    use serde_json::json;
    let joined = |info: RoomInfo, role: Role| {
        json(&Event::Reply(
            Reply::Joined {
                info: Box::new(info),
                role,
                room: room("dev"),
                members: crate::hub::names::nick_list(&["alice", "bob", "quiet-heron-42"]),
                messages: vec![],
                created: false,
                last_seq: 3,
                gap: false,
                store_id: "sid".into(),
            },
            Some("j".into()),
        ))
    };
    let v = joined(
        RoomInfo {
            topic: Some("Rust and chat".into()),
            owner: Some("alice".into()),
            ops: vec!["bob".into()],
            invite_only: true,
            accounts: vec!["alice".into(), "bob".into()],
        },
        Role::Owner,
    );
    assert_eq!(
        v,
        json!({"type":"joined","room":"dev","members":["alice","bob","quiet-heron-42"],
               "messages":[],"last_seq":3,"store_id":"sid","topic":"Rust and chat",
               "owner":"alice","ops":["bob"],"invite_only":true,"role":"owner",
               "accounts":["alice","bob"],"ref":"j"})
    );
    let v = joined(RoomInfo::default(), Role::Member);
    assert_eq!(v["topic"], json!(null));
    assert_eq!(v["owner"], json!(null));
    assert_eq!(v["ops"], json!([]));
    assert_eq!(v["invite_only"], json!(false));
    assert_eq!(v["role"], "member");
    assert_eq!(v["accounts"], json!([]));
    assert_eq!(joined(RoomInfo::default(), Role::Op)["role"], "op");
}

#[test]
fn messages_dms_and_presence_name_the_account_only_when_logged_in() {
    let mut m = (*msg(5, false)).clone();
    assert!(json(&Event::Message(Rc::new(m.clone())))
        .get("account")
        .is_none());
    m.account = Some("alice".into());
    let v = json(&Event::Message(Rc::new(m.clone())));
    assert_eq!(v["account"], "alice");
    assert_eq!(v["from"], "alice");
    assert_eq!(
        json(&Event::Reply(Reply::Sent(Rc::new(m), None), None))["account"],
        "alice"
    );
    let dm = |account: Option<&str>| {
        Rc::new(Dm {
            account: account.map(Into::into),
            from: "alice".into(),
            to: "bob".into(),
            ts: 7,
            text: "psst".into(),
        })
    };
    assert!(json(&Event::Dm(dm(None))).get("account").is_none());
    assert_eq!(json(&Event::Dm(dm(Some("alice"))))["account"], "alice");
    assert_eq!(
        json(&Event::Reply(Reply::DmSent(dm(Some("alice")), None), None))["account"],
        "alice"
    );
    let presence = |kind, account: Option<&str>| {
        Event::Presence(Rc::new(Presence {
            account: account.map(Into::into),
            room: room("lobby"),
            kind,
            nick: "bob".into(),
            ts: 5,
        }))
    };
    assert_eq!(
        json(&presence(PresenceKind::Join, Some("bob"))),
        serde_json::json!({"type":"presence","room":"lobby","event":"join","nick":"bob",
                           "ts":5,"account":"bob"})
    );
    assert!(json(&presence(PresenceKind::Join, None))
        .get("account")
        .is_none());
    assert_eq!(
        json(&presence(
            PresenceKind::Nick { old: "x".into() },
            Some("bob")
        ))["account"],
        "bob"
    );
}

#[test]
fn kicked_and_banned_leaves_say_so() {
    for (reason, s) in [
        (LeaveReason::Kicked, "kicked"),
        (LeaveReason::Banned, "banned"),
    ] {
        let v = json(&Event::Presence(Rc::new(Presence {
            account: None,
            room: room("dev"),
            kind: PresenceKind::Leave(reason),
            nick: "bob".into(),
            ts: 5,
        })));
        assert_eq!(
            v,
            serde_json::json!({"type":"presence","room":"dev","event":"leave","nick":"bob",
                               "ts":5,"reason":s})
        );
    }
}

#[test]
fn account_answers() {
    use serde_json::json;
    let account = |what, account: Option<&str>, token: Option<&str>, r: Option<&str>| {
        json(&Event::Reply(
            Reply::Account {
                what,
                account: account.map(Into::into),
                nick: "quiet-heron-42".into(),
                token: token.map(Into::into),
            },
            r.map(Into::into),
        ))
    };
    assert_eq!(
        account(
            AccountChange::Registered,
            Some("alice"),
            Some("t0k"),
            Some("a")
        ),
        json!({"type":"account","account":"alice","token":"t0k","ref":"a"})
    );
    assert_eq!(
        account(AccountChange::LoggedIn, Some("alice"), Some("t0k"), None),
        json!({"type":"account","account":"alice","token":"t0k"})
    );
    assert_eq!(
        account(
            AccountChange::PasswordChanged,
            Some("alice"),
            Some("t1"),
            None
        ),
        json!({"type":"account","account":"alice","token":"t1"})
    );
    assert_eq!(
        account(AccountChange::LoggedOut, None, None, Some("o")),
        json!({"type":"account","account":null,"ref":"o"})
    );
}

fn mod_event(action: ModKind) -> Rc<ModEvent> {
    Rc::new(ModEvent {
        room: room("dev"),
        by: "alice".into(),
        action,
        ts: 9,
    })
}

#[test]
fn mod_events_carry_what_each_action_needs() {
    use serde_json::json;
    let bob = || "bob".to_string();
    let cases = [
        (
            ModKind::Kick {
                nick: bob(),
                reason: Some("spam".into()),
            },
            json!({"type":"mod","room":"dev","action":"kick","nick":"bob","by":"alice",
                   "reason":"spam","ts":9}),
        ),
        (
            ModKind::Kick {
                nick: bob(),
                reason: None,
            },
            json!({"type":"mod","room":"dev","action":"kick","nick":"bob","by":"alice","ts":9}),
        ),
        (
            ModKind::Ban {
                nick: bob(),
                reason: Some("flood".into()),
            },
            json!({"type":"mod","room":"dev","action":"ban","nick":"bob","by":"alice",
                   "reason":"flood","ts":9}),
        ),
        (
            ModKind::Ban {
                nick: bob(),
                reason: None,
            },
            json!({"type":"mod","room":"dev","action":"ban","nick":"bob","by":"alice","ts":9}),
        ),
        (
            ModKind::Unban { nick: bob() },
            json!({"type":"mod","room":"dev","action":"unban","nick":"bob","by":"alice","ts":9}),
        ),
        (
            ModKind::Mute {
                nick: bob(),
                secs: Some(300),
                until: Some(300_009),
            },
            json!({"type":"mod","room":"dev","action":"mute","nick":"bob","by":"alice",
                   "secs":300,"until":300_009,"ts":9}),
        ),
        (
            ModKind::Mute {
                nick: bob(),
                secs: None,
                until: None,
            },
            json!({"type":"mod","room":"dev","action":"mute","nick":"bob","by":"alice","ts":9}),
        ),
        (
            ModKind::Unmute { nick: bob() },
            json!({"type":"mod","room":"dev","action":"unmute","nick":"bob","by":"alice","ts":9}),
        ),
        (
            ModKind::Op { nick: bob() },
            json!({"type":"mod","room":"dev","action":"op","nick":"bob","by":"alice","ts":9}),
        ),
        (
            ModKind::Deop { nick: bob() },
            json!({"type":"mod","room":"dev","action":"deop","nick":"bob","by":"alice","ts":9}),
        ),
        (
            ModKind::Topic {
                text: "Rust \"and\" chat".into(),
            },
            json!({"type":"mod","room":"dev","action":"topic","by":"alice",
                   "text":"Rust \"and\" chat","ts":9}),
        ),
        (
            ModKind::Topic {
                text: String::new(),
            },
            json!({"type":"mod","room":"dev","action":"topic","by":"alice","text":"","ts":9}),
        ),
        (
            ModKind::InviteOnly { on: true },
            json!({"type":"mod","room":"dev","action":"invite_only","by":"alice","on":true,"ts":9}),
        ),
        (
            ModKind::InviteOnly { on: false },
            json!({"type":"mod","room":"dev","action":"invite_only","by":"alice","on":false,"ts":9}),
        ),
        (
            ModKind::Invite { nick: bob() },
            json!({"type":"mod","room":"dev","action":"invite","nick":"bob","by":"alice","ts":9}),
        ),
    ];
    for (kind, want) in cases {
        let m = mod_event(kind);
        assert_eq!(json(&Event::Mod(m.clone())), want, "{m:?}");
        // The op's copy: the same object with the request's ref.
        let mut with_ref = want.clone();
        with_ref["ref"] = json!("m1");
        assert_eq!(
            json(&Event::Reply(Reply::Mod(m.clone()), Some("m1".into()))),
            with_ref,
            "{m:?}"
        );
        assert_eq!(json(&Event::Reply(Reply::Mod(m), None)), want);
    }
}

#[test]
fn ban_lists() {
    use serde_json::json;
    let bans = Reply::Bans {
        room: room("dev"),
        bans: vec![
            BanInfo {
                nick: "bob".into(),
                account: true,
                by: "alice".into(),
                reason: Some("spam".into()),
                ts: 11,
            },
            BanInfo {
                nick: "quiet-heron-42".into(),
                account: false,
                by: "carol".into(),
                reason: None,
                ts: 12,
            },
        ],
    };
    assert_eq!(
        json(&Event::Reply(bans, Some("b".into()))),
        json!({"type":"bans","room":"dev","bans":[
                {"nick":"bob","account":true,"by":"alice","reason":"spam","ts":11},
                {"nick":"quiet-heron-42","account":false,"by":"carol","ts":12}],
               "ref":"b"})
    );
    assert_eq!(
        json(&Event::Reply(
            Reply::Bans {
                room: room("dev"),
                bans: vec![]
            },
            None
        )),
        json!({"type":"bans","room":"dev","bans":[]})
    );
}
