//! Journal events as JSON. A sweep writes one `step.pass` record per check
//! and announces every check in a `plan` record, so those two are written
//! here field by field: the bytes serde's derived code writes, without its
//! per-field machinery (serializing a sweep's `step.pass` record cost 8,000
//! instructions). Every other event, and any string that needs escaping,
//! goes through `serde_json` itself.

use serde_json::Value;

use crate::core::record::{Event, PlannedBackoff, PlannedStep};
use crate::core::BlobRef;

/// Appends `event` as one JSON object: what `serde_json::to_writer` writes.
pub(super) fn write_event(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    match event {
        Event::StepPass { .. } => step_pass(out, event),
        // A sweep announces every check in these, 1,000 to a record.
        Event::Plan { steps } => {
            out.extend_from_slice(br#"{"type":"plan","steps":["#);
            comma_separated(out, steps, planned_step)?;
            out.extend_from_slice(b"]}");
            Ok(())
        }
        other => serde_json::to_writer(out, other),
    }
}

/// A `step.pass` record: its fields in declaration order, with the same
/// skips as the derive's `skip_serializing_if`.
fn step_pass(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    let Event::StepPass {
        step,
        kind,
        title,
        target,
        rendered,
        max_attempts,
        timeout_ms,
        duration_ms,
        detail,
        blobs,
    } = event
    else {
        // Only `write_event`'s `step.pass` arm calls this.
        return serde_json::to_writer(out, event);
    };
    string_field(out, br#"{"type":"step.pass","step":"#, step)?;
    string_field(out, br#","kind":"#, kind)?;
    if let Some(title) = title {
        string_field(out, br#","title":"#, title)?;
    }
    string_field(out, br#","target":"#, target)?;
    if let Some(rendered) = rendered {
        string_field(out, br#","rendered":"#, rendered)?;
    }
    number_field(out, br#","max_attempts":"#, max_attempts)?;
    number_field(out, br#","timeout_ms":"#, timeout_ms)?;
    number_field(out, br#","duration_ms":"#, duration_ms)?;
    if !detail.is_empty() {
        out.extend_from_slice(br#","detail":{"#);
        comma_separated(out, detail, |out, (key, value)| {
            string(out, key)?;
            out.push(b':');
            match value {
                Value::String(text) => string(out, text),
                other => serde_json::to_writer(&mut *out, other),
            }
        })?;
        out.push(b'}');
    }
    if !blobs.is_empty() {
        out.extend_from_slice(br#","blobs":["#);
        comma_separated(out, blobs, blob_ref)?;
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}

fn planned_step(out: &mut Vec<u8>, step: &PlannedStep) -> serde_json::Result<()> {
    let PlannedStep {
        id,
        kind,
        max_attempts,
        timeout_ms,
        depends_on,
        mutating,
        backoff,
        tags,
    } = step;
    string_field(out, br#"{"id":"#, id)?;
    string_field(out, br#","kind":"#, kind)?;
    number_field(out, br#","max_attempts":"#, max_attempts)?;
    number_field(out, br#","timeout_ms":"#, timeout_ms)?;
    if !depends_on.is_empty() {
        strings_field(out, br#","depends_on":"#, depends_on)?;
    }
    if *mutating {
        out.extend_from_slice(br#","mutating":true"#);
    }
    if let Some(PlannedBackoff {
        initial_ms,
        max_ms,
        jitter,
    }) = backoff
    {
        number_field(out, br#","backoff":{"initial_ms":"#, initial_ms)?;
        number_field(out, br#","max_ms":"#, max_ms)?;
        number_field(out, br#","jitter":"#, jitter)?;
        out.push(b'}');
    }
    if !tags.is_empty() {
        strings_field(out, br#","tags":"#, tags)?;
    }
    out.push(b'}');
    Ok(())
}

fn blob_ref(out: &mut Vec<u8>, blob: &BlobRef) -> serde_json::Result<()> {
    let BlobRef {
        role,
        digest,
        size,
        truncated,
    } = blob;
    string_field(out, br#"{"role":"#, role)?;
    string_field(out, br#","digest":"#, digest)?;
    number_field(out, br#","size":"#, size)?;
    if *truncated {
        out.extend_from_slice(br#","truncated":true"#);
    }
    out.push(b'}');
    Ok(())
}

/// `items`, each written by `write`, separated by commas.
fn comma_separated<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item)?;
    }
    Ok(())
}

/// `lead` (the text up to the value: `,"key":`) and a string value.
fn string_field(out: &mut Vec<u8>, lead: &[u8], text: &str) -> serde_json::Result<()> {
    out.extend_from_slice(lead);
    string(out, text)
}

/// `lead` and a number (or `true`, `false`), as `serde_json` writes it.
fn number_field(
    out: &mut Vec<u8>,
    lead: &[u8],
    value: &impl serde::Serialize,
) -> serde_json::Result<()> {
    out.extend_from_slice(lead);
    serde_json::to_writer(&mut *out, value)
}

/// `lead` and a list of strings.
fn strings_field(out: &mut Vec<u8>, lead: &[u8], list: &[String]) -> serde_json::Result<()> {
    out.extend_from_slice(lead);
    out.push(b'[');
    comma_separated(out, list, |out, text| string(out, text))?;
    out.push(b']');
    Ok(())
}

/// A JSON string. Text with nothing JSON escapes (a control character, `"`
/// or `\`) is copied whole; anything else is left to `serde_json`.
fn string(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    // Not short-circuiting, so the scan runs many bytes at a time.
    let escapes = text.bytes().fold(false, |seen, b| {
        seen | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escapes {
        return serde_json::to_writer(out, text);
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    /// Text with every kind of character JSON treats differently.
    const TEXTS: [&str; 9] = [
        "",
        "c0000042",
        "GET http://127.0.0.1:18090/u/42",
        "quote \" and backslash \\ inside",
        "line\nbreak\ttab\r\u{0}nul\u{1f}unit",
        "ünïcödé ✓ 😀",
        "\u{7f} delete and \u{2028} separator",
        "</script> & <b>",
        "sha256:dc51b8c96c2d745df3bd5590d990230a482fd247123599548e0632fdbf97fc22",
    ];

    fn details(seed: usize) -> Map<String, Value> {
        let mut map = Map::new();
        for (i, text) in TEXTS
            .iter()
            .enumerate()
            .skip(seed % 3)
            .step_by(1 + seed % 4)
        {
            map.insert(
                format!("{text}{i}"),
                Value::String(TEXTS[(i + seed) % TEXTS.len()].into()),
            );
        }
        map.insert("status".into(), Value::from(200 + seed as u64));
        map.insert("latency_ms".into(), Value::from(seed as f64 / 7.0));
        map.insert("negative".into(), Value::from(-(seed as i64)));
        map.insert("ok".into(), Value::Bool(seed.is_multiple_of(2)));
        map.insert("none".into(), Value::Null);
        map.insert(
            "nested".into(),
            serde_json::json!({"a": [1, "two\n", {"three": 3.5}], "b": TEXTS[seed % TEXTS.len()]}),
        );
        if seed.is_multiple_of(5) {
            map.clear();
        }
        map
    }

    fn step_pass(seed: usize) -> Event {
        let text = |k: usize| TEXTS[(seed + k) % TEXTS.len()].to_string();
        let durations = [
            0.0,
            5.9,
            0.509,
            1e-9,
            12_345.678_9,
            f64::NAN,
            f64::INFINITY,
            -0.0,
        ];
        Event::StepPass {
            step: text(0),
            kind: text(1),
            title: (seed.is_multiple_of(2)).then(|| text(2)),
            target: text(3),
            rendered: (seed.is_multiple_of(3)).then(|| text(4)),
            max_attempts: (seed % 11) as u32,
            timeout_ms: (seed as u64) * 1_000_003,
            duration_ms: durations[seed % durations.len()],
            detail: details(seed),
            blobs: (0..seed % 3)
                .map(|i| BlobRef {
                    role: text(5 + i),
                    digest: text(8),
                    size: (seed * 1000 + i) as u64,
                    truncated: (seed + i) % 2 == 1,
                })
                .collect(),
        }
    }

    #[test]
    fn step_pass_records_are_the_bytes_serde_writes() {
        for seed in 0..500 {
            let event = step_pass(seed);
            let mut ours = Vec::new();
            write_event(&mut ours, &event).unwrap();
            let serde = serde_json::to_vec(&event).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&serde),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn plan_records_are_the_bytes_serde_writes() {
        let text = |k: usize| TEXTS[k % TEXTS.len()].to_string();
        for seed in 0..200 {
            let steps = (0..seed % 7)
                .map(|i| PlannedStep {
                    id: text(seed + i),
                    kind: text(seed + 2 * i + 1),
                    max_attempts: (seed + i) as u32 % 11,
                    timeout_ms: (seed * 997 + i) as u64,
                    depends_on: (0..(seed + i) % 3).map(|k| text(seed + k)).collect(),
                    mutating: (seed + i) % 4 == 1,
                    backoff: ((seed + i) % 5 != 0).then_some(PlannedBackoff {
                        initial_ms: (seed * 13) as u64,
                        max_ms: u64::MAX - seed as u64,
                        jitter: (seed + i) % 2 == 0,
                    }),
                    tags: (0..(seed * i) % 4).map(|k| text(seed * 3 + k)).collect(),
                })
                .collect();
            let event = Event::Plan { steps };
            let mut ours = Vec::new();
            write_event(&mut ours, &event).unwrap();
            let serde = serde_json::to_vec(&event).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&serde),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn other_events_and_escaped_text_go_through_serde() {
        let event = Event::Backoff {
            step: "api".into(),
            after_attempt: 1,
            delay_ms: 1000,
        };
        let mut ours = b"kept".to_vec();
        write_event(&mut ours, &event).unwrap();
        assert_eq!(
            ours,
            [b"kept".as_slice(), &serde_json::to_vec(&event).unwrap()].concat()
        );
        let mut text = Vec::new();
        string(&mut text, "a\"b\\c\u{1}").unwrap();
        assert_eq!(text, br#""a\"b\\c\u0001""#);
    }
}
