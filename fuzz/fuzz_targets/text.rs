//! lvm2's metadata text on arbitrary bytes (read as lossy UTF-8): the parser
//! never panics; a tree it accepts writes out plainly and reads back the same;
//! a tree the model accepts writes out as lvm2 would (`Metadata::to_text`)
//! and that text reads back to the same model, and writes the same again.
#![no_main]

use cairn::meta::model::{self, Metadata, Trailer, WriteContext};
use cairn::meta::text;
use libfuzzer_sys::fuzz_target;
use std::fmt::Debug;

/// Where two values first differ (their Debug text around it): a whole VG
/// is too long to read in a panic message.
fn first_difference<T: Debug>(left: &T, right: &T) -> String {
    let (l, r) = (format!("{left:?}"), format!("{right:?}"));
    let at = l
        .char_indices()
        .zip(r.chars())
        .find(|((_, a), b)| a != b)
        .map_or(l.len().min(r.len()), |((i, _), _)| i);
    let window = |s: &str| {
        let (mut from, mut to) = (at.saturating_sub(300), (at + 200).min(s.len()));
        while !s.is_char_boundary(from) {
            from -= 1;
        }
        while !s.is_char_boundary(to) {
            to += 1;
        }
        format!("...{}...", &s[from..to])
    };
    format!(
        "at char {at}:\n  left: {}\n right: {}",
        window(&l),
        window(&r)
    )
}

fn assert_same<T: Debug + PartialEq>(left: &T, right: &T, what: &str, text: &str) {
    if left != right {
        panic!(
            "{what}, first difference {}\n--- text written ---\n{text}",
            first_difference(left, right)
        );
    }
}

fn context() -> WriteContext {
    WriteContext {
        generator: "cairn fuzz".into(),
        uname: [
            "Linux".into(),
            "fuzz-host".into(),
            "6.1.0-0-amd64".into(),
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0-0 (2026-01-01)".into(),
            "x86_64".into(),
        ],
        time: 1_795_499_005,
        description: "Write from fuzz/text.".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let Ok(tree) = text::parse(&input) else {
        return;
    };
    let plain = text::to_text(&tree);
    match text::parse(&plain) {
        Ok(again) => assert_same(
            &again,
            &tree,
            "plain text of the tree reads back differently",
            &plain,
        ),
        Err(e) => panic!("plain text of the tree does not parse: {e}\n{plain}"),
    }

    let Ok(md) = model::from_tree(&tree) else {
        return;
    };
    let ctx = context();
    let written = md.to_text(&ctx);
    let again = match model::parse(&written) {
        Ok(again) => again,
        Err(e) => panic!("written metadata does not read back: {e}\n{written}"),
    };
    // The VG must come back as it was, but for two things the writer does as
    // lvm2 does: it lists visible LVs first (then hidden ones, each in list
    // order), and the trailer is its own (ctx) but for keys it does not know.
    let mut vg = md.vg.clone();
    let (mut lvs, hidden): (Vec<_>, Vec<_>) = vg
        .lvs
        .iter()
        .cloned()
        .partition(|lv| md.vg.lv_is_visible(lv));
    lvs.extend(hidden);
    vg.lvs = lvs;
    let expected = Metadata {
        vg,
        trailer: Trailer {
            description: ctx.description.clone(),
            creation_host: ctx.uname[1].clone(),
            creation_time: ctx.time,
            // Keys after lvm2's own are kept as read.
            extra: md.trailer.extra.clone(),
        },
    };
    assert_same(
        &again,
        &expected,
        "written metadata reads back differently (left: read back, right: first read)",
        &written,
    );
    let rewritten = again.to_text(&ctx);
    assert_same(
        &rewritten,
        &written,
        "a rewrite of the read-back model differs",
        &written,
    );
});
