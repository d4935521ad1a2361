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

// ---------------------------------------------------------------------------
// Version 2: messages that live, and search (PROTOCOL-2 sections 3 and 4)
// ---------------------------------------------------------------------------

use crate::hub::command::{Scope, DEFAULT_SEARCH};
use crate::hub::event::{Amend, AmendKind, Hit, Reaction, Reactor, ReplyTo};

/// The exact text an event renders to.
fn text_of(event: &Event) -> String {
    String::from_utf8(render(event).expect("rendered")).expect("UTF-8")
}

#[test]
fn live_message_requests() {
    let cases: Vec<(&str, Command)> = vec![
        (
            r##"{"type":"edit","room":"#Dev","seq":17,"text":"new text"}"##,
            Command::Edit {
                room: Some(room("dev")),
                target: Target::Seq(17),
                text: "new text".into(),
            },
        ),
        (
            r#"{"type":"delete","room":"dev","seq":17}"#,
            Command::Delete {
                room: Some(room("dev")),
                target: Target::Seq(17),
            },
        ),
        (
            r#"{"type":"react","room":"dev","seq":17,"emoji":"👍"}"#,
            Command::React {
                room: Some(room("dev")),
                target: Target::Seq(17),
                emoji: "👍".into(),
            },
        ),
        (
            // The largest seq there is.
            r#"{"type":"delete","room":"dev","seq":18446744073709551615}"#,
            Command::Delete {
                room: Some(room("dev")),
                target: Target::Seq(u64::MAX),
            },
        ),
        (
            r#"{"type":"say","room":"dev","text":"me too","reply_to":17,"cid":"c1"}"#,
            Command::Say {
                room: Some(room("dev")),
                text: "me too".into(),
                action: false,
                cid: Some("c1".into()),
                reply_to: Some(Target::Seq(17)),
            },
        ),
        (
            r#"{"type":"say","room":"dev","text":"no reply","reply_to":null}"#,
            Command::Say {
                room: Some(room("dev")),
                text: "no reply".into(),
                action: false,
                cid: None,
                reply_to: None,
            },
        ),
        (
            r#"{"type":"image","room":"dev","data":"R0lGODlhAQ==","reply_to":3}"#,
            Command::Image {
                room: room("dev"),
                data: b"GIF89a\x01".to_vec(),
                text: None,
                cid: None,
                id: String::new(),
                reply_to: Some(Target::Seq(3)),
            },
        ),
        (
            // An edit to an empty text is the hub's to refuse.
            r#"{"type":"edit","room":"dev","seq":1,"text":""}"#,
            Command::Edit {
                room: Some(room("dev")),
                target: Target::Seq(1),
                text: String::new(),
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text).command, want, "{text}");
    }
    let r = ok(r#"{"type":"react","room":"dev","seq":2,"emoji":"🎉","ref":"x1"}"#);
    assert_eq!(r.r#ref.as_deref(), Some("x1"));
}

#[test]
fn search_requests() {
    let search = |q: &str, scope, limit, before| Command::Search {
        q: q.into(),
        scope,
        limit,
        before,
    };
    let cases: Vec<(&str, Command)> = vec![
        (
            r#"{"type":"search","q":"words","room":"dev","limit":20,"before":900}"#,
            search("words", Scope::Room(room("dev")), 20, Some(900)),
        ),
        (
            r#"{"type":"search","q":"from:bob \"exact phrase\""}"#,
            search(
                "from:bob \"exact phrase\"",
                Scope::Joined,
                DEFAULT_SEARCH,
                None,
            ),
        ),
        (
            r#"{"type":"search","q":"x","room":null,"limit":null,"before":null}"#,
            search("x", Scope::Joined, DEFAULT_SEARCH, None),
        ),
        (
            // Any string is a query, the empty one too: the hub decides.
            r#"{"type":"search","q":""}"#,
            search("", Scope::Joined, DEFAULT_SEARCH, None),
        ),
        (
            // Larger limits are passed on: the hub caps them.
            r#"{"type":"search","q":"x","limit":500}"#,
            search("x", Scope::Joined, 500, None),
        ),
        (
            r#"{"type":"search","q":"x","limit":18446744073709551615}"#,
            search(
                "x",
                Scope::Joined,
                usize::try_from(u64::MAX).unwrap_or(usize::MAX),
                None,
            ),
        ),
        (
            r#"{"type":"search","q":"x","limit":0}"#,
            search("x", Scope::Joined, 0, None),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text).command, want, "{text}");
    }
}

#[test]
fn bad_live_message_and_search_requests() {
    let r = Some("c".to_string());
    for (text, code) in [
        // Missing fields.
        (
            r#"{"type":"edit","room":"a","text":"x"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"edit","room":"a","seq":1}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"edit","seq":1,"text":"x"}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"delete","room":"a"}"#, ErrorCode::BadRequest),
        (
            r#"{"type":"delete","room":"a","seq":null}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"delete","seq":1}"#, ErrorCode::BadRequest),
        (
            r#"{"type":"react","room":"a","seq":1}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"react","room":"a","emoji":"x"}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"search"}"#, ErrorCode::BadRequest),
        (r#"{"type":"search","room":"a"}"#, ErrorCode::BadRequest),
        // Wrong types.
        (
            r#"{"type":"edit","room":"a","seq":"17","text":"x"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"edit","room":"a","seq":1,"text":7}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"edit","room":"a","seq":1,"text":null}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"edit","room":7,"seq":1,"text":"x"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"delete","room":"a","seq":-1}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"delete","room":"a","seq":1.5}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"delete","room":"a","seq":true}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"delete","room":"a","seq":[1]}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"react","room":"a","seq":1,"emoji":1}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"react","room":"a","seq":1,"emoji":["x"]}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"type":"search","q":5}"#, ErrorCode::BadRequest),
        (r#"{"type":"search","q":null}"#, ErrorCode::BadRequest),
        (
            r#"{"type":"search","q":"x","room":5}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"search","q":"x","limit":"20"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"search","q":"x","limit":-1}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"search","q":"x","limit":2.5}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"search","q":"x","before":"9"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"a","text":"x","reply_to":"17"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"a","text":"x","reply_to":-3}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"say","room":"a","text":"x","reply_to":{"seq":3}}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"image","room":"a","data":"R0lGODlhAQ==","reply_to":false}"#,
            ErrorCode::BadRequest,
        ),
        // Numbers too big for a seq.
        (
            r#"{"type":"edit","room":"a","seq":18446744073709551616,"text":"x"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"delete","room":"a","seq":1e30}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"type":"search","q":"x","before":1e400}"#,
            ErrorCode::BadJson,
        ),
        // Room names are checked.
        (
            r#"{"type":"edit","room":"no way","seq":1,"text":"x"}"#,
            ErrorCode::RoomInvalid,
        ),
        (
            r#"{"type":"react","room":"","seq":1,"emoji":"x"}"#,
            ErrorCode::RoomInvalid,
        ),
        (
            r#"{"type":"search","q":"x","room":"a b"}"#,
            ErrorCode::RoomInvalid,
        ),
    ] {
        // serde_json refuses 1e400 outright, before the ref is read.
        let want_ref = if code == ErrorCode::BadJson {
            None
        } else {
            r.clone()
        };
        let text = format!("{},\"ref\":\"c\"}}", text.strip_suffix('}').unwrap());
        assert_eq!(refused(&text), (code, want_ref), "{text}");
    }
    // The message names the field.
    let e = parse(r#"{"type":"edit","room":"a","seq":"x","text":"y"}"#).unwrap_err();
    assert!(e.error.message.contains("\"seq\""), "{}", e.error.message);
    let e = parse(r#"{"type":"react","room":"a","seq":1}"#).unwrap_err();
    assert!(e.error.message.contains("\"emoji\""), "{}", e.error.message);
}

fn reply_msg(seq: u64) -> Message {
    let mut m = (*msg(seq, false)).clone();
    m.room = room("r");
    m.ts = 5;
    m.text = "me too".into();
    m
}

fn reactor(nick: &str) -> Reactor {
    Reactor {
        author: format!("a:{nick}"),
        nick: nick.into(),
    }
}

#[test]
fn a_message_without_the_new_fields_is_version_1_byte_for_byte() {
    assert_eq!(
        text_of(&Event::Message(msg(17, false))),
        r#"{"type":"message","room":"lobby","seq":17,"ts":1763800000000,"from":"alice","text":"hi \"there\" 😀"}"#
    );
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Sent(msg(4, true), Some("k".into())),
            Some("r".into())
        )),
        r#"{"type":"message","room":"lobby","seq":4,"ts":1763800000000,"from":"alice","text":"hi \"there\" 😀","action":true,"cid":"k","ref":"r"}"#
    );
}

#[test]
fn a_reply_carries_what_it_answers() {
    let mut m = reply_msg(18);
    m.reply_to = Some(ReplyTo {
        seq: 17,
        from: "bob".into(),
        text: Some("the first line".into()),
    });
    assert_eq!(
        text_of(&Event::Message(Rc::new(m.clone()))),
        r#"{"type":"message","room":"r","seq":18,"ts":5,"from":"alice","text":"me too","reply_to":{"seq":17,"from":"bob","text":"the first line"}}"#
    );
    // The answered message was deleted: no text.
    m.reply_to = Some(ReplyTo {
        seq: 17,
        from: "bob".into(),
        text: None,
    });
    assert_eq!(
        text_of(&Event::Message(Rc::new(m))),
        r#"{"type":"message","room":"r","seq":18,"ts":5,"from":"alice","text":"me too","reply_to":{"seq":17,"from":"bob"}}"#
    );
}

#[test]
fn mentions_edits_and_reactions_in_the_message() {
    let mut m = reply_msg(17);
    m.mentions = vec!["bob".into(), "Carol".into()];
    m.edited_ts = Some(99);
    // The emoji in the message's order, which is not sorted order.
    m.reactions = vec![
        Reaction {
            emoji: "👍".into(),
            by: vec![reactor("alice"), reactor("bob")],
        },
        Reaction {
            emoji: "🎉".into(),
            by: vec![reactor("carol")],
        },
        Reaction {
            emoji: "+1".into(),
            by: vec![reactor("dave")],
        },
        // Nobody holds it: left out.
        Reaction {
            emoji: "x".into(),
            by: vec![],
        },
    ];
    m.account = Some("alice".into());
    assert_eq!(
        text_of(&Event::Message(Rc::new(m))),
        r#"{"type":"message","room":"r","seq":17,"ts":5,"from":"alice","account":"alice","text":"me too","mentions":["bob","Carol"],"edited_ts":99,"reactions":{"👍":["alice","bob"],"🎉":["carol"],"+1":["dave"]}}"#
    );
    // Identities never go out.
    let mut m = reply_msg(17);
    m.author = "g:secret-guest-id".into();
    m.reactions = vec![Reaction {
        emoji: "👍".into(),
        by: vec![Reactor {
            author: "g:other-secret".into(),
            nick: "bob".into(),
        }],
    }];
    let out = text_of(&Event::Message(Rc::new(m)));
    assert!(!out.contains("secret"), "{out}");
    assert!(out.ends_with(r#","reactions":{"👍":["bob"]}}"#), "{out}");
    // Only empty reactions: no field at all.
    let mut m = reply_msg(17);
    m.reactions = vec![Reaction {
        emoji: "x".into(),
        by: vec![],
    }];
    assert!(json(&Event::Message(Rc::new(m))).get("reactions").is_none());
}

#[test]
fn a_deleted_message_shows_only_that_it_was_there() {
    let mut m = reply_msg(17);
    m.deleted = true;
    m.text = "should never show".into();
    m.account = Some("alice".into());
    m.action = true;
    m.image = Some(crate::hub::event::ImageRef {
        id: "ab12".into(),
        mime: "image/png",
        size: 3,
    });
    m.mentions = vec!["bob".into()];
    m.edited_ts = Some(4);
    m.reply_to = Some(ReplyTo {
        seq: 1,
        from: "bob".into(),
        text: Some("quoted".into()),
    });
    m.reactions = vec![Reaction {
        emoji: "👍".into(),
        by: vec![reactor("bob")],
    }];
    let m = Rc::new(m);
    assert_eq!(
        text_of(&Event::Message(m.clone())),
        r#"{"type":"message","room":"r","seq":17,"from":"alice","ts":5,"deleted":true}"#
    );
    // A cid repeat answered with a message since deleted keeps cid and ref.
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Sent(m.clone(), Some("c1".into())),
            Some("r1".into())
        )),
        r#"{"type":"message","room":"r","seq":17,"from":"alice","ts":5,"deleted":true,"cid":"c1","ref":"r1"}"#
    );
    // In a history page the same.
    let v = json(&Event::Reply(
        Reply::History {
            room: room("r"),
            messages: vec![m.clone()],
        },
        None,
    ));
    assert_eq!(
        v["messages"][0],
        serde_json::json!({"type":"message","room":"r","seq":17,"from":"alice","ts":5,"deleted":true})
    );
    let page = String::from_utf8(render_page(&room("r"), &[m])).unwrap();
    assert!(
        !page.contains("should never show") && !page.contains("ab12"),
        "{page}"
    );
}

fn amend(seq: u64, by: &str, kind: AmendKind) -> Rc<Amend> {
    Rc::new(Amend {
        room: room("r"),
        seq,
        target: 17,
        ts: 1_763_800_000_000,
        by: by.into(),
        author: "a:secret".into(),
        kind,
    })
}

fn edit(text: &str) -> Rc<Amend> {
    amend(42, "alice", AmendKind::Edit { text: text.into() })
}

fn delete(by: &str, of: &str) -> Rc<Amend> {
    amend(43, by, AmendKind::Delete { of: of.into() })
}

fn react(emoji: &str, on: bool) -> Rc<Amend> {
    amend(
        44,
        "alice",
        AmendKind::React {
            emoji: emoji.into(),
            on,
        },
    )
}

#[test]
fn amend_events_are_exactly_as_the_contract_spells_them() {
    assert_eq!(
        text_of(&Event::Amend(edit("new text"))),
        r#"{"type":"edit","room":"r","seq":42,"target":17,"from":"alice","text":"new text","ts":1763800000000}"#
    );
    assert_eq!(
        text_of(&Event::Amend(delete("bob", "alice"))),
        r#"{"type":"delete","room":"r","seq":43,"target":17,"by":"bob","ts":1763800000000}"#
    );
    assert_eq!(
        text_of(&Event::Amend(react("👍", true))),
        r#"{"type":"react","room":"r","seq":44,"target":17,"from":"alice","emoji":"👍","on":true,"ts":1763800000000}"#
    );
    assert_eq!(
        text_of(&Event::Amend(react("👍", false))),
        r#"{"type":"react","room":"r","seq":44,"target":17,"from":"alice","emoji":"👍","on":false,"ts":1763800000000}"#
    );
    // Texts are escaped, never cut or altered.
    assert_eq!(
        json(&Event::Amend(edit("a \"b\"\n\u{1b}[31m")))["text"],
        "a \"b\"\n\u{1b}[31m"
    );
}

#[test]
fn the_senders_copy_of_an_amend_carries_the_ref() {
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Amended(edit("new")),
            Some("e1".into())
        )),
        r#"{"type":"edit","room":"r","seq":42,"target":17,"from":"alice","text":"new","ts":1763800000000,"ref":"e1"}"#
    );
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Amended(delete("alice", "alice")),
            Some("d1".into())
        )),
        r#"{"type":"delete","room":"r","seq":43,"target":17,"by":"alice","ts":1763800000000,"ref":"d1"}"#
    );
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Amended(react("🎉", true)),
            Some("x".into())
        )),
        r#"{"type":"react","room":"r","seq":44,"target":17,"from":"alice","emoji":"🎉","on":true,"ts":1763800000000,"ref":"x"}"#
    );
    // Without a ref, the same object as the room's.
    assert_eq!(
        text_of(&Event::Reply(Reply::Amended(edit("new")), None)),
        text_of(&Event::Amend(edit("new")))
    );
}

#[test]
fn a_catch_up_lists_messages_and_amends_in_order() {
    let mut edited = reply_msg(17);
    edited.edited_ts = Some(1_763_800_000_000);
    edited.text = "new text".into();
    let out = text_of(&Event::Reply(
        Reply::Joined {
            room: room("r"),
            members: crate::hub::names::nick_list(&["alice"]),
            messages: vec![
                Entry::Amend(edit("new text")),
                Entry::Message(Rc::new(edited)),
                Entry::Amend(delete("bob", "carol")),
                Entry::Amend(react("👍", true)),
            ],
            created: false,
            last_seq: 44,
            gap: false,
            store_id: "sid".into(),
            info: Box::default(),
            role: Role::Member,
        },
        Some("j".into()),
    ));
    let want = concat!(
        r#"{"type":"joined","room":"r","members":["alice"],"messages":["#,
        r#"{"type":"edit","room":"r","seq":42,"target":17,"from":"alice","text":"new text","ts":1763800000000},"#,
        r#"{"type":"message","room":"r","seq":17,"ts":5,"from":"alice","text":"new text","edited_ts":1763800000000},"#,
        r#"{"type":"delete","room":"r","seq":43,"target":17,"by":"bob","ts":1763800000000},"#,
        r#"{"type":"react","room":"r","seq":44,"target":17,"from":"alice","emoji":"👍","on":true,"ts":1763800000000}"#,
        r#"],"last_seq":44,"store_id":"sid","topic":null,"owner":null,"ops":[],"invite_only":false,"#,
        r#""role":"member","accounts":[],"ref":"j"}"#
    );
    assert_eq!(out, want);
}

fn hit(seq: u64, text: &str, snippet: &str, marks: Vec<(usize, usize)>) -> Hit {
    let mut m = reply_msg(seq);
    m.text = text.into();
    Hit {
        message: Rc::new(m),
        snippet: snippet.into(),
        marks,
    }
}

#[test]
fn search_answers() {
    let results = vec![
        hit(9, "Rust is nice", "Rust is nice", vec![(0, 4)]),
        hit(3, "crème brûlée", "crème brûlée", vec![(0, 5), (6, 12)]),
    ];
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Search {
                q: "rust".into(),
                room: Some(room("r")),
                results: results.clone(),
            },
            Some("s1".into()),
        )),
        concat!(
            r#"{"type":"search","q":"rust","room":"r","results":["#,
            r#"{"type":"message","room":"r","seq":9,"ts":5,"from":"alice","text":"Rust is nice","snippet":"Rust is nice","marks":[[0,4]]},"#,
            r#"{"type":"message","room":"r","seq":3,"ts":5,"from":"alice","text":"crème brûlée","snippet":"crème brûlée","marks":[[0,5],[6,12]]}"#,
            r#"],"ref":"s1"}"#
        )
    );
    // Every room the client is in: no room key; each result names its own.
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Search {
                q: "nothing \"here\"".into(),
                room: None,
                results: vec![],
            },
            None,
        )),
        r#"{"type":"search","q":"nothing \"here\"","results":[]}"#
    );
    let v = json(&Event::Reply(
        Reply::Search {
            q: "rust".into(),
            room: None,
            results: results[..1].to_vec(),
        },
        None,
    ));
    assert!(v.get("room").is_none());
    assert_eq!(v["results"][0]["room"], "r");
    // A result keeps the message's other fields (an edit, reactions).
    let mut h = hit(5, "edited text", "edited text", vec![]);
    let mut m = (*h.message).clone();
    m.edited_ts = Some(7);
    m.reactions = vec![Reaction {
        emoji: "👍".into(),
        by: vec![reactor("bob")],
    }];
    h.message = Rc::new(m);
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Search {
                q: "edited".into(),
                room: Some(room("r")),
                results: vec![h],
            },
            None,
        )),
        concat!(
            r#"{"type":"search","q":"edited","room":"r","results":["#,
            r#"{"type":"message","room":"r","seq":5,"ts":5,"from":"alice","text":"edited text","edited_ts":7,"reactions":{"👍":["bob"]},"snippet":"edited text","marks":[]}"#,
            r#"]}"#
        )
    );
    // A deleted message is never found; should one slip through, neither
    // its text nor a snippet of it goes out.
    let mut h = hit(6, "secret", "secret", vec![(0, 6)]);
    let mut m = (*h.message).clone();
    m.deleted = true;
    h.message = Rc::new(m);
    assert_eq!(
        text_of(&Event::Reply(
            Reply::Search {
                q: "secret".into(),
                room: Some(room("r")),
                results: vec![h],
            },
            None,
        )),
        concat!(
            r#"{"type":"search","q":"secret","room":"r","results":["#,
            r#"{"type":"message","room":"r","seq":6,"from":"alice","ts":5,"deleted":true,"snippet":"","marks":[]}"#,
            r#"]}"#
        )
    );
}
