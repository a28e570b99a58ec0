//! What procjon's fuzz targets check, as plain functions of the input bytes.
//!
//! The `cargo fuzz` targets in `fuzz_targets/` call them under libFuzzer
//! (nightly Rust); the mutation test in `tests/integration/mutation.rs`
//! includes this file and calls them on stable Rust, so CI runs the same
//! checks on every commit. Each panics when a property fails.

use procjon::frame::{self, ClientFrame, MAX_FRAME_LEN, ServerFrame};
use procjon::state_file as store;
use rustls_pki_types::CertificateDer;
use std::path::Path;

/// Decoding a line from a peer never panics; the serde-free path for
/// pings decides exactly as serde does; an accepted frame is valid and
/// decodes to itself after encoding.
pub fn check_frame(data: &[u8]) {
    let _ = ServerFrame::decode(data);
    let decoded = ClientFrame::decode(data);
    assert_eq!(
        decoded,
        ClientFrame::decode_general(data),
        "the ping fast path and serde disagree on {:?}",
        String::from_utf8_lossy(data)
    );
    let Ok(frame) = decoded else {
        return;
    };
    if let ClientFrame::Register(registration) = &frame
        && let Err(err) = registration.validate()
    {
        panic!("decode accepted an invalid registration: {err}");
    }
    if let ClientFrame::Ping {
        detail, perfdata, ..
    } = &frame
    {
        if let Some(Err(err)) = detail.as_deref().map(|d| frame::validate_text("detail", d)) {
            panic!("decode accepted an invalid detail: {err}");
        }
        if let Err(err) = frame::validate_perfdata(perfdata) {
            panic!("decode accepted invalid perfdata: {err}");
        }
    }
    if let ClientFrame::Unregister {
        reason: Some(reason),
        ..
    } = &frame
        && let Err(err) = frame::validate_text("reason", reason)
    {
        panic!("decode accepted an invalid reason: {err}");
    }
    let line = frame.encode();
    assert_eq!(
        line.last(),
        Some(&b'\n'),
        "an encoded frame ends in a newline"
    );
    let body = &line[..line.len() - 1];
    assert!(
        !body.contains(&b'\n'),
        "an encoded frame is one line: {:?}",
        String::from_utf8_lossy(body)
    );
    // Encoding may lengthen a frame a little (`1` becomes `1.0`).
    if body.len() <= MAX_FRAME_LEN {
        match ClientFrame::decode(body) {
            Ok(again) => assert_eq!(again, frame, "encode then decode changed the frame"),
            Err(err) => panic!(
                "an encoded frame does not decode: {err}: {:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}

/// Replaying any bytes as a state file never panics; a file that replays
/// compacts into one that replays to the same services and outbox.
pub fn check_replay(data: &[u8]) {
    let path = Path::new("fuzz-state.jsonl");
    let Ok(replay) = store::replay_bytes(path, data) else {
        return;
    };
    assert!(replay.good_len <= data.len() as u64);
    let state = replay.state;
    assert!(
        state.next_seq <= store::MAX_SEQ,
        "next seq {} leaves no room",
        state.next_seq
    );
    let records = state.compacted();
    assert_eq!(
        records.len() as u64,
        state.live_lines(),
        "live_lines disagrees with compaction"
    );
    let mut bytes = Vec::new();
    for record in &records {
        store::encode_record(record, &mut bytes);
    }
    let again = match store::replay_bytes(path, &bytes) {
        Ok(replay) => replay.state,
        Err(err) => panic!(
            "a compacted file does not replay: {err}\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(
        again.services, state.services,
        "compaction changed services"
    );
    // What the outbox delivers: the same announcements, by seq, with the same text.
    let texts = |s: &store::State| {
        s.outbox
            .iter()
            .map(|(seq, p)| {
                let a = &p.announcement;
                (
                    *seq,
                    a.service.clone(),
                    a.text.clone(),
                    p.delivered_to_sinks().to_vec(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(&again),
        texts(&state),
        "compaction changed the outbox"
    );
}

/// Reading the identity of any certificate bytes never panics, and an
/// identity is never empty (an empty owner would make the state file invalid).
pub fn check_identity(data: &[u8]) {
    if let Some(identity) = procjon::tls::certificate_identity(&CertificateDer::from(data)) {
        assert!(!identity.is_empty(), "an empty identity");
    }
    // Reading its expiry never panics either (procjon reads its own
    // server certificate's at start-up and on SIGHUP).
    let _ = procjon::tls::not_after(&CertificateDer::from(data));
}
