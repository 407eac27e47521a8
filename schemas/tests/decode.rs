//! The decode entry point's typed errors and forward compatibility.

use schemas::{
    decode, decode_str, DecodeError, Envelope, Identity, MatchEvent, MatchEventData, MatchRequest,
    MatchRequestData, RobotCommandData, VoteRecorded, VoteSource,
};

const CREATE: &str = r#"{"eventId":"r1","eventType":"match.create","schemaVersion":1,
  "matchId":"m1","timestamp":10,"correlationId":"c1","causationId":"r1",
  "data":{"template":"duo_2v2"}}"#;

#[test]
fn decodes_request_and_fills_defaults() {
    let req: MatchRequest = decode_str(CREATE).expect("decodes");
    let MatchRequestData::Create(create) = &req.data else {
        panic!("wrong variant: {:?}", req.data);
    };
    assert_eq!(create.template, "duo_2v2");
    assert_eq!(create.total_rounds, 5);
    assert!(create.humans.is_empty());
    assert_eq!(req.event_type(), "match.create");
}

#[test]
fn malformed_json_is_reported_as_such() {
    for bad in ["", "{", "not json", r#"{"eventId":"r1",}"#, "{} trailing"] {
        let err = decode_str::<MatchRequestData>(bad).expect_err(bad);
        assert!(
            matches!(err, DecodeError::MalformedJson(_)),
            "{bad}: {err:?}"
        );
        assert_eq!(err.code(), "malformed_json");
    }
}

#[test]
fn syntax_error_inside_data_is_malformed_json() {
    let bad = CREATE.replace(r#"{"template":"duo_2v2"}"#, r#"{"template":"duo_2v2""#);
    let err = decode_str::<MatchRequestData>(&bad).expect_err("bad");
    assert!(matches!(err, DecodeError::MalformedJson(_)), "{err:?}");
}

#[test]
fn missing_or_mistyped_header_is_invalid_envelope() {
    let cases = [
        "[1,2]".to_owned(),
        CREATE.replace(r#""eventId":"r1","#, ""),
        CREATE.replace(r#""timestamp":10"#, r#""timestamp":"ten""#),
        CREATE.replace(r#""schemaVersion":1"#, r#""schemaVersion":"1""#),
        CREATE.replace(r#""matchId":"m1""#, r#""matchId":"m1","matchId":"m2""#),
    ];
    for case in cases {
        let err = decode_str::<MatchRequestData>(&case).expect_err(&case);
        assert!(
            matches!(err, DecodeError::InvalidEnvelope(_)),
            "{case}: {err:?}"
        );
    }
}

#[test]
fn unknown_event_type_is_reported_with_topic() {
    let json = CREATE.replace("match.create", "match.explode");
    let err = decode_str::<MatchRequestData>(&json).expect_err("unknown");
    assert_eq!(
        err,
        DecodeError::UnknownEventType {
            event_type: "match.explode".into(),
            topic: "match-requests"
        }
    );
    // A known type of another topic is unknown here too.
    let err = decode_str::<RobotCommandData>(CREATE).expect_err("other topic");
    assert!(matches!(err, DecodeError::UnknownEventType { .. }));
}

#[test]
fn any_schema_version_but_1_is_unsupported() {
    for v in [0u32, 2, 99] {
        let json = CREATE.replace(r#""schemaVersion":1"#, &format!(r#""schemaVersion":{v}"#));
        let err = decode_str::<MatchRequestData>(&json).expect_err("version");
        assert_eq!(err, DecodeError::UnsupportedSchemaVersion { found: v });
    }
    // Also when a v2 payload would not even fit the v1 type.
    let json = CREATE
        .replace(r#""schemaVersion":1"#, r#""schemaVersion":2"#)
        .replace(r#"{"template":"duo_2v2"}"#, r#"{"template":{"name":"x"}}"#);
    let err = decode_str::<MatchRequestData>(&json).expect_err("version");
    assert_eq!(err, DecodeError::UnsupportedSchemaVersion { found: 2 });
}

#[test]
fn bad_data_is_invalid_data_whatever_the_field_order() {
    let bad = CREATE.replace(r#"{"template":"duo_2v2"}"#, r#"{"totalRounds":-3}"#);
    let err = decode_str::<MatchRequestData>(&bad).expect_err("bad data");
    assert!(
        matches!(&err, DecodeError::InvalidData { event_type, .. } if event_type == "match.create"),
        "{err:?}"
    );
    // data before eventType and schemaVersion: buffered path.
    let reordered = r#"{"data":{"playerId":7},"eventId":"r1","eventType":"match.join",
      "schemaVersion":1,"matchId":"m1","timestamp":10,"correlationId":"c","causationId":"r1"}"#;
    let err = decode_str::<MatchRequestData>(reordered).expect_err("bad data");
    assert!(matches!(err, DecodeError::InvalidData { .. }), "{err:?}");
}

#[test]
fn data_before_header_decodes_the_same() {
    let reordered = r#"{"data":{"template":"duo_2v2"},"eventId":"r1","eventType":"match.create",
      "schemaVersion":1,"matchId":"m1","timestamp":10,"correlationId":"c1","causationId":"r1"}"#;
    let a: MatchRequest = decode_str(reordered).expect("reordered");
    let b: MatchRequest = decode_str(CREATE).expect("canonical");
    assert_eq!(a, b);
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let json = r#"{"eventId":"r1","eventType":"vote.submit","schemaVersion":1,"matchId":"m1",
      "timestamp":10,"correlationId":"c1","causationId":"r1","headers":{"x":1},
      "data":{"playerId":"p1","round":2,"votedFor":"B","confidence":0.9,"extra":[1]}}"#;
    let req: MatchRequest = decode_str(json).expect("forward compatible");
    assert!(
        matches!(req.data, MatchRequestData::Vote(ref v) if v.voted_for == "B" && v.round == 2)
    );
}

#[test]
fn encode_decode_round_trip_and_header_order() {
    let ev: MatchEvent = Envelope::new(
        "e1",
        "m1",
        42,
        "c1",
        "r1",
        VoteRecorded {
            round: 3,
            voter: Identity::ALL[1],
            voted_for: Identity::ALL[4],
            source: VoteSource::Robot,
        },
    );
    let bytes = ev.to_json_vec().expect("encode");
    let text = String::from_utf8(bytes.clone()).expect("utf8");
    assert!(text.starts_with(
        r#"{"eventId":"e1","eventType":"vote.recorded","schemaVersion":1,"matchId":"m1""#
    ));
    assert!(text.contains(r#""data":{"round":3,"voter":"B","votedFor":"E","source":"robot"}"#));
    let back: MatchEvent = decode(&bytes).expect("decode");
    assert_eq!(back, ev);
    // serde's Deserialize impl agrees with decode.
    let via_serde: Envelope<MatchEventData> = serde_json::from_slice(&bytes).expect("serde");
    assert_eq!(via_serde, ev);
}
