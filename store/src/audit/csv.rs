//! Records as CSV (RFC 4180): a header line, then one line per record, lines
//! ending in CRLF, a field quoted (`"`, inner quotes doubled) when it holds a
//! comma, a quote, CR or LF. Times are RFC 3339 in UTC with milliseconds.
use super::AuditRecord;

/// The header line, CRLF included.
pub const CSV_HEADER: &str = "seq,time,tenant_id,tenant,actor,source,action,object,outcome,details,hash\r\n";

/// One record's line, CRLF included.
pub fn csv_line(r: &AuditRecord) -> String {
    let fields = [
        r.seq.to_string(),
        rfc3339(r.at_ms),
        r.tenant_id.clone().unwrap_or_default(),
        r.tenant_name.clone().unwrap_or_default(),
        r.actor.clone(),
        r.source.clone().unwrap_or_default(),
        r.action.clone(),
        r.object.clone(),
        r.outcome.clone(),
        r.details.clone(),
        r.hash.clone(),
    ];
    let mut line = fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// `2025-01-31T14:05:09.123Z`; the raw number when out of range.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        })
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        let r = AuditRecord {
            seq: 12,
            at_ms: 1_738_332_309_123,
            tenant_id: None,
            tenant_name: None,
            actor: "eve, \"the\" admin".into(),
            source: Some("127.0.0.1".into()),
            action: "console.login".into(),
            object: "user a\r\nb".into(),
            outcome: "failure".into(),
            details: r#"{"reason":"x"}"#.into(),
            hash: "ab".into(),
        };
        assert_eq!(
            csv_line(&r),
            "12,2025-01-31T14:05:09.123Z,,,\"eve, \"\"the\"\" admin\",127.0.0.1,console.login,\"user a\r\nb\",failure,\
             \"{\"\"reason\"\":\"\"x\"\"}\",ab\r\n"
        );
        assert!(CSV_HEADER.ends_with("\r\n"));
    }
}
