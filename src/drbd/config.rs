//! drbd-utils resource files (/etc/drbd.conf and what it includes,
//! usually /etc/drbd.d/*.res), read so that existing setups work unchanged:
//! `resource NAME { ... }` with `on HOST { device; disk; address; meta-disk }`
//! sections, `stacked-on-top-of LOWER { device; address }`, `net { protocol }`
//! and `disk { ... }` options, `include "glob";`. Anything else is kept as
//! an option and ignored by cairn; errors carry file and line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::admin::Protocol;

/// drbd-utils' top configuration file, which includes the rest.
pub const DEFAULT_CONF: &str = "/etc/drbd.conf";

/// A configuration file that cannot be read or that cairn cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    /// The file, as its path was given or included.
    pub file: String,
    /// 1-based line in `file`; 0 when the file itself could not be read.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Result of reading a configuration.
pub type Result<T> = std::result::Result<T, ConfigError>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    Semi,
}

fn tokenize(file: &str, text: &str) -> Result<Vec<(Token, usize)>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '{' => {
                out.push((Token::Open, line));
                chars.next();
            }
            '}' => {
                out.push((Token::Close, line));
                chars.next();
            }
            ';' => {
                out.push((Token::Semi, line));
                chars.next();
            }
            '"' => {
                chars.next();
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(c) = chars.next() {
                                s.push(c);
                            }
                        }
                        Some('\n') => {
                            line += 1;
                            s.push('\n');
                        }
                        Some(c) => s.push(c),
                        None => {
                            return Err(ConfigError {
                                file: file.to_owned(),
                                line: start,
                                message: "a string is not closed (missing \")".into(),
                            })
                        }
                    }
                }
                out.push((Token::Word(s), start));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"' | '#') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push((Token::Word(s), line));
            }
        }
    }
    Ok(out)
}

/// A statement (`words;`) or a section (`words { ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    words: Vec<String>,
    line: usize,
    file: String,
    children: Option<Vec<Node>>,
}

fn parse_nodes(
    file: &str,
    tokens: &[(Token, usize)],
    at: &mut usize,
    nested: bool,
) -> Result<Vec<Node>> {
    let err = |line, message: String| ConfigError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut nodes = Vec::new();
    let mut words = Vec::new();
    let mut line = 0;
    while *at < tokens.len() {
        let (tok, l) = &tokens[*at];
        *at += 1;
        match tok {
            Token::Word(w) => {
                if words.is_empty() {
                    line = *l;
                }
                words.push(w.clone());
            }
            Token::Semi => {
                if !words.is_empty() {
                    nodes.push(Node {
                        words: std::mem::take(&mut words),
                        line,
                        file: file.to_owned(),
                        children: None,
                    });
                }
            }
            Token::Open => {
                if words.is_empty() {
                    return Err(err(*l, "a section `{` without a name".into()));
                }
                let children = parse_nodes(file, tokens, at, true)?;
                nodes.push(Node {
                    words: std::mem::take(&mut words),
                    line,
                    file: file.to_owned(),
                    children: Some(children),
                });
            }
            Token::Close => {
                if !nested {
                    return Err(err(*l, "a `}` closes nothing".into()));
                }
                if !words.is_empty() {
                    return Err(err(line, format!("`{}` needs a `;`", words.join(" "))));
                }
                return Ok(nodes);
            }
        }
    }
    if nested {
        let last = tokens.last().map_or(1, |t| t.1);
        return Err(err(last, "a section is not closed (missing `}`)".into()));
    }
    if !words.is_empty() {
        return Err(err(line, format!("`{}` needs a `;`", words.join(" "))));
    }
    Ok(nodes)
}

/// One host's part of a resource (`on HOST { ... }`, or the stacked
/// resource's local part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The host name after `on` (compared with uname's nodename); the lower
    /// resource's name for a `stacked-on-top-of` section.
    pub name: String,
    /// `device`: the DRBD device path, e.g. /dev/drbd0.
    pub device: Option<String>,
    /// The minor, from `device /dev/drbdN` or `device PATH minor N`.
    pub minor: Option<u32>,
    /// `disk`: the backing block device.
    pub disk: Option<String>,
    /// `address`: where this host listens and its peer connects (IP:PORT).
    pub address: Option<SocketAddr>,
    /// `meta-disk`: `internal` or a device; cairn supports internal only.
    pub meta_disk: Option<String>,
    /// 1-based line of the section in its file.
    pub line: usize,
}

/// A resource as cairn uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The name after `resource`.
    pub name: String,
    /// The file that defines it.
    pub file: String,
    /// 1-based line of `resource NAME {` in `file`.
    pub line: usize,
    /// `net { protocol }`: replication protocol (default C).
    pub protocol: Protocol,
    /// The `on HOST { }` sections, with resource-level statements inherited.
    pub hosts: Vec<Host>,
    /// `stacked-on-top-of LOWER { device; address; }`.
    pub stacked_on: Option<(String, Host)>,
    /// `disk { name value; }` options (resync-rate, al-extents, on-io-error, size).
    pub disk_options: BTreeMap<String, String>,
}

impl Resource {
    /// This host's `on` section, if it has one. A stacked resource also
    /// has one on its far side (the off-site node runs it as a plain
    /// resource there).
    pub fn on_host(&self, hostname: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == hostname)
    }

    /// The other end as seen from this host: for a stacked resource used
    /// on its stacked side, its one `on` section; on the far side of a
    /// stacked resource, the stacked section; else the one `on` section
    /// that is not this host's (a single-node resource such as the seed's
    /// r0 has none, and that is no error).
    pub fn peer(&self, hostname: &str, stacked: bool) -> Option<&Host> {
        if stacked {
            return match &self.hosts[..] {
                [one] => Some(one),
                _ => None,
            };
        }
        if let Some((_, h)) = &self.stacked_on {
            return Some(h);
        }
        let mut others = self.hosts.iter().filter(|h| h.name != hostname);
        let peer = others.next();
        if others.next().is_some() {
            return None;
        }
        peer
    }
}

/// Every resource of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Resources in the order their files define them.
    pub resources: Vec<Resource>,
}

fn minor_of(device: &str) -> Option<u32> {
    device.strip_prefix("/dev/drbd")?.parse().ok()
}

fn parse_address(words: &[String]) -> Option<SocketAddr> {
    // `address [ipv4|ipv6] IP:PORT`
    let text = match words {
        [_, fam, a] if fam == "ipv4" || fam == "ipv6" => a,
        [_, a] => a,
        _ => return None,
    };
    text.parse().ok()
}

impl Config {
    /// Reads `path` and the files it includes.
    pub fn load(path: &Path) -> Result<Config> {
        let mut config = Config::default();
        config.read_file(path, 0)?;
        Ok(config)
    }

    /// Parses one file's text (includes are read relative to `base`).
    pub fn parse(file: &str, text: &str, base: &Path) -> Result<Config> {
        let mut config = Config::default();
        config.read_text(file, text, base, 0)?;
        Ok(config)
    }

    /// The resource called `name`.
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }

    fn read_file(&mut self, path: &Path, depth: usize) -> Result<()> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.read_text(&file, &text, &base, depth)
    }

    fn read_text(&mut self, file: &str, text: &str, base: &Path, depth: usize) -> Result<()> {
        let tokens = tokenize(file, text)?;
        let mut at = 0;
        let nodes = parse_nodes(file, &tokens, &mut at, false)?;
        for node in nodes {
            let err = |message: String| ConfigError {
                file: file.to_owned(),
                line: node.line,
                message,
            };
            match (node.words[0].as_str(), &node.children) {
                ("include", None) => {
                    if depth > 8 {
                        return Err(err("includes nested too deep (a loop?)".into()));
                    }
                    let pattern = node
                        .words
                        .get(1)
                        .ok_or_else(|| err("include needs a file or pattern".into()))?;
                    for path in expand(base, pattern) {
                        self.read_file(&path, depth + 1)?;
                    }
                }
                ("resource", Some(children)) => {
                    let name = node
                        .words
                        .get(1)
                        .ok_or_else(|| err("a resource needs a name".into()))?;
                    if self.resource(name).is_some() {
                        return Err(err(format!("resource {name} is defined twice")));
                    }
                    let r = resource(file, name, node.line, children)?;
                    self.resources.push(r);
                }
                ("global" | "common" | "skip", Some(_)) => {}
                (word, _) => return Err(err(format!("unexpected `{word}` at the top level"))),
            }
        }
        Ok(())
    }
}

/// `include` patterns: a path, or a `*` in the last component.
fn expand(base: &Path, pattern: &str) -> Vec<PathBuf> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let Some(name) = full.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return vec![];
    };
    if !name.contains('*') {
        return if full.exists() { vec![full] } else { vec![] };
    }
    let (prefix, suffix) = name.split_once('*').expect("has a star");
    let dir = full.parent().unwrap_or(Path::new("/"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with(prefix) && n.ends_with(suffix) && n.len() >= name.len() - 1
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn host(file: &str, name: &str, line: usize, children: &[Node], defaults: &Host) -> Result<Host> {
    let mut h = Host {
        name: name.to_owned(),
        line,
        ..defaults.clone()
    };
    for c in children {
        let err = |message: String| ConfigError {
            file: file.to_owned(),
            line: c.line,
            message,
        };
        let value = || {
            c.words
                .get(1)
                .cloned()
                .ok_or_else(|| err(format!("`{}` needs a value", c.words[0])))
        };
        match c.words[0].as_str() {
            "device" => {
                let dev = value()?;
                h.minor = match c.words.get(2..) {
                    Some([m, n]) if m == "minor" => Some(
                        n.parse()
                            .map_err(|_| err(format!("minor {n:?} is not a number")))?,
                    ),
                    _ => minor_of(&dev),
                };
                if h.minor.is_none() {
                    return Err(err(format!(
                        "device {dev}: cannot tell its minor (use /dev/drbdN or `device PATH minor N`)"
                    )));
                }
                h.device = Some(dev);
            }
            "disk" => h.disk = Some(value()?),
            "meta-disk" => h.meta_disk = Some(value()?),
            "address" => {
                h.address = Some(parse_address(&c.words).ok_or_else(|| {
                    err(format!(
                        "address {:?}: give IP:PORT (optionally after ipv4 or ipv6)",
                        c.words[1..].join(" ")
                    ))
                })?)
            }
            "volume" | "flexible-meta-disk" => {
                return Err(err(format!(
                    "`{}` is not supported by cairn yet (one volume, internal metadata)",
                    c.words[0]
                )))
            }
            _ => {}
        }
    }
    Ok(h)
}

fn resource(file: &str, name: &str, line: usize, children: &[Node]) -> Result<Resource> {
    let mut r = Resource {
        name: name.to_owned(),
        file: file.to_owned(),
        line,
        protocol: Protocol::C,
        hosts: vec![],
        stacked_on: None,
        disk_options: BTreeMap::new(),
    };
    // Resource-level device/disk/meta-disk/address are inherited by hosts.
    let statements: Vec<Node> = children
        .iter()
        .filter(|c| c.children.is_none())
        .cloned()
        .collect();
    let defaults = host(
        file,
        "",
        line,
        &statements,
        &Host {
            name: String::new(),
            device: None,
            minor: None,
            disk: None,
            address: None,
            meta_disk: None,
            line,
        },
    )?;
    for c in children {
        let err = |message: String| ConfigError {
            file: file.to_owned(),
            line: c.line,
            message,
        };
        let Some(sub) = &c.children else { continue };
        match c.words[0].as_str() {
            "on" => {
                let host_name = c
                    .words
                    .get(1)
                    .ok_or_else(|| err("`on` needs a host name".into()))?;
                r.hosts.push(host(file, host_name, c.line, sub, &defaults)?);
            }
            "stacked-on-top-of" => {
                let lower = c
                    .words
                    .get(1)
                    .ok_or_else(|| err("`stacked-on-top-of` needs the lower resource".into()))?;
                let h = host(file, lower, c.line, sub, &defaults)?;
                r.stacked_on = Some((lower.clone(), h));
            }
            "net" => {
                for o in sub {
                    if o.words[0] == "protocol" {
                        r.protocol = match o.words.get(1).map(String::as_str) {
                            Some("A") => Protocol::A,
                            Some("B") => Protocol::B,
                            Some("C") => Protocol::C,
                            other => {
                                return Err(ConfigError {
                                    file: file.to_owned(),
                                    line: o.line,
                                    message: format!("protocol {other:?}: give A, B or C"),
                                })
                            }
                        };
                    }
                }
            }
            "disk" => {
                for o in sub {
                    if let Some(v) = o.words.get(1) {
                        r.disk_options.insert(o.words[0].clone(), v.clone());
                    }
                }
            }
            _ => {}
        }
    }
    if r.hosts.is_empty() && r.stacked_on.is_none() {
        return Err(ConfigError {
            file: file.to_owned(),
            line,
            message: format!("resource {name} has no `on HOST` section"),
        });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's two resources (vm-tests/reference writes the same file).
    const SEED: &str = r#"
global { usage-count no; }
resource r0 {
  on livenode5 {
    device /dev/drbd0;
    disk /dev/mapper/DRBDVG-DRBDLV1;
    address 127.0.0.1:7789;
    meta-disk internal;
  }
}

resource r0-U {
  net {
    protocol A;
  }

  stacked-on-top-of r0 {
    device /dev/drbd10;
    address 127.0.0.1:7791;
  }

  on bullshit {   # the off-site peer
    device /dev/drbd10;
    disk /dev/bulldisk;
    address ipv4 127.0.0.1:7794;
    meta-disk internal;
  }
}
"#;

    #[test]
    fn the_seed_s_resources_parse() {
        let c = Config::parse("r0.res", SEED, Path::new("/etc")).unwrap();
        let r0 = c.resource("r0").unwrap();
        let local = r0.on_host("livenode5").unwrap();
        assert_eq!(local.minor, Some(0));
        assert_eq!(local.disk.as_deref(), Some("/dev/mapper/DRBDVG-DRBDLV1"));
        assert_eq!(local.address, Some("127.0.0.1:7789".parse().unwrap()));
        // A single-node resource has no peer, and that is no error.
        assert!(r0.peer("livenode5", false).is_none());
        assert_eq!(r0.protocol, Protocol::C);
        let u = c.resource("r0-U").unwrap();
        assert_eq!(u.protocol, Protocol::A);
        let (lower, stacked) = u.stacked_on.as_ref().unwrap();
        assert_eq!(lower, "r0");
        assert_eq!(stacked.minor, Some(10));
        let peer = u.peer("livenode5", true).unwrap();
        assert_eq!(peer.name, "bullshit");
        assert_eq!(peer.address, Some("127.0.0.1:7794".parse().unwrap()));
        // On the off-site node, r0-U is a plain resource whose peer is the
        // stacked side.
        assert!(u.on_host("bullshit").is_some());
        assert_eq!(u.peer("bullshit", false), Some(stacked));
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = [
            (
                "resource r0 {\n on a {\n device /dev/drbd0\n }\n}\n",
                3,
                "needs a `;`",
            ),
            (
                "resource r0 {\n on a {\n address 1.2.3;\n }\n}\n",
                3,
                "IP:PORT",
            ),
            ("resource r0 {\n}\n", 1, "no `on HOST`"),
            (
                "resource r0 {\n on a { device /dev/x; }\n}\n",
                2,
                "cannot tell its minor",
            ),
            (
                "resource r0 {\n net { protocol D; }\n on a { }\n}\n",
                2,
                "A, B or C",
            ),
            ("}\n", 1, "closes nothing"),
            ("resource r0 {\n on a {\n", 2, "not closed"),
            ("frobnicate;\n", 1, "unexpected `frobnicate`"),
        ];
        for (text, line, what) in bad {
            let e = Config::parse("x.res", text, Path::new("/etc")).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("x.res:{line}: ")));
        }
    }

    #[test]
    fn includes_are_followed() {
        let dir = std::env::temp_dir().join(format!("cairn-drbdconf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("drbd.d")).unwrap();
        std::fs::write(dir.join("drbd.conf"), "include \"drbd.d/*.res\";\n").unwrap();
        std::fs::write(dir.join("drbd.d/r0.res"), SEED).unwrap();
        std::fs::write(dir.join("drbd.d/notes.txt"), "not a resource").unwrap();
        let c = Config::load(&dir.join("drbd.conf")).unwrap();
        assert_eq!(c.resources.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
