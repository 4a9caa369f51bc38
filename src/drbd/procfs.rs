//! /proc/drbd, the 8.4 module's text status: version line, then per minor a
//! state line and a counters line (and, while syncing, progress lines).
//! cairn's own status comes from netlink; this parser reads what operators
//! and the tests look at, and tolerates lines and tokens it does not know.

use std::collections::BTreeMap;

use serde::Serialize;

/// /proc/drbd, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcDrbd {
    /// Module version, e.g. "8.4.11".
    pub version: String,
    /// Genetlink API version (`api:1`).
    pub api: Option<u32>,
    /// Every minor listed, in /proc/drbd's order.
    pub minors: Vec<MinorState>,
}

/// One minor's lines in /proc/drbd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinorState {
    /// The minor: /dev/drbdMINOR.
    pub minor: u32,
    /// Connection state: StandAlone, WFConnection, Connected, SyncSource, ... (or Unconfigured).
    pub connection: String,
    /// This node's role (`ro:` left of the slash): Primary, Secondary, Unknown.
    pub role: Option<String>,
    /// The peer's role (`ro:` right of the slash).
    pub peer_role: Option<String>,
    /// This node's disk state (`ds:` left): UpToDate, Inconsistent, Diskless, ...
    pub disk: Option<String>,
    /// The peer's disk state (`ds:` right), DUnknown while not connected.
    pub peer_disk: Option<String>,
    /// Replication protocol letter, present once a network config exists.
    pub protocol: Option<char>,
    /// The I/O flags column, e.g. "r-----".
    pub io_flags: Option<String>,
    /// ns, nr, dw, dr, al, bm, lo, pe, ua, ap, ep, oos (KiB or counts, as the module prints them).
    pub counters: BTreeMap<String, u64>,
}

/// Text that is not /proc/drbd as the 8.4 module writes it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// No `version:` line.
    #[error("/proc/drbd has no version line (is the drbd module loaded?)")]
    NoVersion,
    #[error("/proc/drbd line {line}: {what}")]
    /// A minor's line that cannot be read.
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
}

/// Parses the text of /proc/drbd.
pub fn parse(text: &str) -> Result<ProcDrbd, ParseError> {
    let mut version = None;
    let mut api = None;
    let mut minors: Vec<MinorState> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("version:") {
            let mut words = rest.split_whitespace();
            version = words.next().map(str::to_owned);
            api = rest
                .split("api:")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse().ok());
        } else if let Some((num, rest)) = trimmed.split_once(": cs:") {
            let minor = num.parse().map_err(|_| ParseError::Line {
                line: index + 1,
                what: format!("bad minor number {num:?}"),
            })?;
            minors.push(parse_state_line(minor, rest));
        } else if trimmed.starts_with("ns:") {
            let Some(current) = minors.last_mut() else {
                return Err(ParseError::Line {
                    line: index + 1,
                    what: "counters before any minor".into(),
                });
            };
            for token in trimmed.split_whitespace() {
                if let Some((k, v)) = token.split_once(':') {
                    if let Ok(v) = v.parse() {
                        current.counters.insert(k.to_owned(), v);
                    }
                }
            }
        }
    }
    Ok(ProcDrbd {
        version: version.ok_or(ParseError::NoVersion)?,
        api,
        minors,
    })
}

fn parse_state_line(minor: u32, rest: &str) -> MinorState {
    let mut words = rest.split_whitespace();
    let connection = words.next().unwrap_or_default().to_owned();
    let mut state = MinorState {
        minor,
        connection,
        role: None,
        peer_role: None,
        disk: None,
        peer_disk: None,
        protocol: None,
        io_flags: None,
        counters: BTreeMap::new(),
    };
    let pair = |v: &str| {
        let (a, b) = v.split_once('/').unwrap_or((v, ""));
        (Some(a.to_owned()), (!b.is_empty()).then(|| b.to_owned()))
    };
    for word in words {
        if let Some(v) = word.strip_prefix("ro:") {
            (state.role, state.peer_role) = pair(v);
        } else if let Some(v) = word.strip_prefix("ds:") {
            (state.disk, state.peer_disk) = pair(v);
        } else if word.len() == 1 && matches!(word, "A" | "B" | "C") {
            state.protocol = word.chars().next();
        } else if word.len() >= 4 && word.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            state.io_flags = Some(word.to_owned());
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420
 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----
    ns:0 nr:0 dw:40 dr:1592 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1048508

10: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown A r----s
    ns:0 nr:0 dw:0 dr:2120 al:8 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1048440
";

    #[test]
    fn reads_the_seed_stack() {
        let p = parse(SEED).unwrap();
        assert_eq!(p.version, "8.4.11");
        assert_eq!(p.api, Some(1));
        assert_eq!(p.minors.len(), 2);
        let r0 = &p.minors[0];
        assert_eq!((r0.minor, r0.connection.as_str()), (0, "StandAlone"));
        assert_eq!(r0.role.as_deref(), Some("Primary"));
        assert_eq!(r0.peer_role.as_deref(), Some("Unknown"));
        assert_eq!(r0.disk.as_deref(), Some("UpToDate"));
        assert_eq!(r0.peer_disk.as_deref(), Some("DUnknown"));
        assert_eq!(r0.protocol, None);
        assert_eq!(r0.io_flags.as_deref(), Some("r-----"));
        assert_eq!(r0.counters["oos"], 1_048_508);
        let stacked = &p.minors[1];
        assert_eq!(
            (stacked.minor, stacked.connection.as_str()),
            (10, "WFConnection")
        );
        assert_eq!(stacked.protocol, Some('A'));
        assert_eq!(stacked.counters["al"], 8);
    }

    #[test]
    fn unconfigured_minor_has_only_a_connection_state() {
        let p = parse("version: 8.4.11 (api:1/proto:86-101)\n 3: cs:Unconfigured\n").unwrap();
        assert_eq!(p.minors[0].connection, "Unconfigured");
        assert_eq!(p.minors[0].role, None);
    }

    #[test]
    fn tolerates_sync_progress_lines() {
        let text = "version: 8.4.11 (api:1/proto:86-101)
 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----
    ns:1024 nr:0 dw:0 dr:1024 al:0 bm:0 lo:0 pe:1 ua:0 ap:0 ep:1 wo:f oos:3072
\t[===>................] sync'ed: 25.0% (3072/4096)K
\tfinish: 0:00:01 speed: 1,024 (1,024) K/sec
";
        let m = &parse(text).unwrap().minors[0];
        assert_eq!(m.connection, "SyncSource");
        assert_eq!(m.protocol, Some('C'));
        assert_eq!(m.counters["oos"], 3072);
    }

    #[test]
    fn missing_version_is_an_error() {
        assert_eq!(parse(""), Err(ParseError::NoVersion));
        assert!(matches!(
            parse("version: 8.4.11\nx: cs:StandAlone\n"),
            Err(ParseError::Line { line: 2, .. })
        ));
        assert!(matches!(
            parse("version: 8.4.11\n    ns:0 nr:0\n"),
            Err(ParseError::Line { line: 2, .. })
        ));
    }
}
