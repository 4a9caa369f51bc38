//! Two lab VMs on a private wire: a TCP round trip, then the seed's
//! off-site replication: node a runs r0 and the stacked r0-U, node b is
//! r0-U's peer; cairn on both, then cairn on a with drbdadm on b.

#[path = "lab/mod.rs"]
mod lab;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use lab::{Group, Guest, TestResult, VmTest};

const PORT: u16 = 7700;

/// Node a listens and answers; node b connects, sends a nonce and checks the echo.
fn tcp_round_trip(g: &Guest) -> TestResult {
    g.sh("ip -brief addr")?;
    if g.node == 0 {
        let listener = TcpListener::bind((g.addr(), PORT))
            .map_err(|e| format!("bind {}:{PORT}: {e}", g.addr()))?;
        let (stream, peer) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        ensure!(
            peer.ip().to_string() == g.peer_addr(),
            "connection from {peer}, expected {}",
            g.peer_addr()
        );
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let nonce = line
            .trim()
            .strip_prefix("ping ")
            .ok_or_else(|| format!("unexpected greeting {line:?}"))?;
        writeln!(&stream, "pong {nonce} from {}", g.hostname())
            .map_err(|e| format!("write: {e}"))?;
        println!("answered {peer} with nonce {nonce}");
    } else {
        let peer: SocketAddr = format!("{}:{PORT}", g.peer_addr())
            .parse()
            .map_err(|e| format!("{e}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let stream = loop {
            match TcpStream::connect_timeout(&peer, Duration::from_secs(2)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    println!("connect to {}:{PORT}: {e}; retrying", g.peer_addr());
                    std::thread::sleep(Duration::from_millis(300));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot reach node a at {}:{PORT}: {e}",
                        g.peer_addr()
                    ))
                }
            }
        };
        let started = Instant::now();
        let nonce = format!(
            "{:x}",
            std::process::id() as u64 * 7919 + started.elapsed().as_nanos() as u64
        );
        writeln!(&stream, "ping {nonce}").map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let want = "pong ".to_owned() + &nonce + " from cairn-a";
        ensure!(
            line.trim() == want,
            "reply {:?}, expected {want:?}",
            line.trim()
        );
        println!("round trip in {:?}", started.elapsed());
    }
    Ok(())
}

/// A meeting point: each node waits here until the other has arrived
/// (node a listens, node b connects and both exchange the step's name).
fn barrier(g: &Guest, step: &str) -> TestResult {
    const BARRIER_PORT: u16 = 7701;
    if g.node == 0 {
        let listener = TcpListener::bind((g.addr(), BARRIER_PORT))
            .map_err(|e| format!("bind barrier: {e}"))?;
        // Bounded: a peer that failed must not hang this node until the
        // group's timeout.
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("barrier: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(format!("node b never reached {step:?}"));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        // Closed before answering: node b's next connect cannot land in
        // this listener's queue and be reset when it goes.
        drop(listener);
        stream
            .set_nonblocking(false)
            .map_err(|e| format!("barrier: {e}"))?;
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        ensure!(
            line.trim() == step,
            "node b is at {line:?}, node a at {step:?}"
        );
        writeln!(&stream, "{step}").map_err(|e| format!("write: {e}"))?;
    } else {
        let peer: SocketAddr = format!("{}:{BARRIER_PORT}", g.peer_addr())
            .parse()
            .map_err(|e| format!("{e}"))?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let stream = loop {
            match TcpStream::connect_timeout(&peer, Duration::from_secs(2)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(e) => return Err(format!("node a never reached {step:?}: {e}")),
            }
        };
        writeln!(&stream, "{step}").map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        ensure!(line.trim() == step, "node a answered {line:?} at {step:?}");
    }
    Ok(())
}

/// drbd-utils' own place (the guest's /etc is an overlay): the kernel runs
/// `drbdadm before-resync-source minor-10` before a resync, and drbdadm
/// fails it (the connection drops) for a resource it cannot find there.
const CONF: &str = "/etc/drbd.conf";

/// The seed's r0 + r0-U with the off-site peer on node b.
fn offsite_conf(a_disk: &str, b_disk: &str) -> String {
    format!(
        r#"resource r0 {{
  on {ha} {{
    device /dev/drbd0;
    disk {a_disk};
    address 127.0.0.1:7789;
    meta-disk internal;
  }}
}}

resource r0-U {{
  net {{
    protocol A;
  }}
  stacked-on-top-of r0 {{
    device /dev/drbd10;
    address {ia}:7791;
  }}
  on {hb} {{
    device /dev/drbd10;
    disk {b_disk};
    address {ib}:7791;
    meta-disk internal;
  }}
}}
"#,
        ha = lab::host::NODE_HOSTNAMES[0],
        hb = lab::host::NODE_HOSTNAMES[1],
        ia = lab::host::NODE_ADDRS[0],
        ib = lab::host::NODE_ADDRS[1],
    )
}

fn drbd(g: &Guest, args: &str) -> Result<String, String> {
    g.sh(&format!("{} drbd -c {CONF} {args}", lab::guest::CAIRN))
}

/// Polls /proc/drbd's line for `minor` until it contains every `want`.
fn wait_proc(g: &Guest, minor: u32, want: &[&str], secs: u64) -> TestResult {
    let prefix = format!("{minor:>2}: cs:");
    let mut last = String::new();
    g.wait_for(
        &format!("minor {minor} to show {want:?}"),
        Duration::from_secs(secs),
        || {
            last = g.sh("cat /proc/drbd")?;
            Ok(last
                .lines()
                .find(|l| l.starts_with(&prefix))
                .is_some_and(|l| want.iter().all(|w| l.contains(w))))
        },
    )
    .map_err(|e| {
        let dmesg = g.sh("dmesg | grep -i drbd | tail -40").unwrap_or_default();
        format!("{e}\n{last}\nkernel:\n{dmesg}")
    })
}

fn checksum(g: &Guest, dev: &str, mib: u64) -> Result<String, String> {
    let out = g.sh(&format!(
        "dd if={dev} bs=1M count={mib} iflag=direct status=none | sha256sum"
    ))?;
    Ok(out.split_whitespace().next().unwrap_or_default().to_owned())
}

/// Protocol A replication of r0-U to node b: initial sync, a write while
/// connected, a write while b is away (out of sync), the resync when it is
/// back, then the roles switched: b reads what a wrote. `peer_up` and
/// `peer_down` are node b's commands (cairn's or drbdadm's).
fn offsite_round(g: &Guest, round: &str, peer_up: &str, peer_down: &str) -> TestResult {
    const MIB: u64 = 48;
    let disk = g.loop_disk(&format!("{round}{}", g.node), 64)?;
    // Both nodes need the other's disk path in the file: same name scheme.
    let a_disk = if g.node == 0 {
        disk.dev.clone()
    } else {
        String::from("/dev/unused")
    };
    let b_disk = if g.node == 1 {
        disk.dev.clone()
    } else {
        String::from("/dev/unused")
    };
    std::fs::write(CONF, offsite_conf(&a_disk, &b_disk)).map_err(|e| e.to_string())?;
    g.sh("grep -q '^drbd ' /proc/modules || modprobe drbd; ip link set lo up")?;
    if g.node == 0 {
        drbd(g, "create-md r0 --force")?;
        drbd(g, "up r0")?;
        drbd(g, "primary r0 --force")?;
        drbd(g, "create-md --stacked r0-U --force")?;
        drbd(g, "up --stacked r0-U")?;
    } else {
        drbd(g, "create-md r0-U --force")?;
        g.sh(peer_up)?;
    }
    barrier(g, &format!("{round}: both up"))?;
    wait_proc(
        g,
        10,
        &["cs:Connected", "ds:Inconsistent/Inconsistent", " A "],
        120,
    )?;
    barrier(g, &format!("{round}: connected"))?;
    if g.node == 0 {
        drbd(g, "primary --stacked r0-U --force")?;
    }
    wait_proc(g, 10, &["cs:Connected", "ds:UpToDate/UpToDate"], 300)?;
    if g.node == 0 {
        g.sh("dd if=/dev/urandom of=/dev/drbd10 bs=1M count=16 oflag=direct status=none")?;
        let st = drbd(g, "status r0-U")?;
        ensure!(
            st.contains("Connected Primary/Secondary UpToDate/UpToDate protocol A"),
            "{st}"
        );
    }
    if g.node == 0 && round == "cc" {
        al_replay_as_drbdmeta(g)?;
    }
    barrier(g, &format!("{round}: written"))?;
    // b goes away; a writes on; b comes back and is resynced.
    if g.node == 1 {
        g.sh(peer_down)?;
    }
    barrier(g, &format!("{round}: b down"))?;
    if g.node == 0 {
        wait_proc(g, 10, &["cs:WFConnection"], 60)?;
        g.sh("dd if=/dev/urandom of=/dev/drbd10 bs=1M count=8 seek=20 oflag=direct status=none")?;
        let oos = g.sh("grep -A2 '^10:' /proc/drbd | grep -o 'oos:[0-9]*'")?;
        ensure!(
            oos.trim() != "oos:0",
            "nothing out of sync while b is away: {oos}"
        );
    }
    barrier(g, &format!("{round}: a wrote alone"))?;
    if g.node == 1 {
        g.sh(peer_up)?;
    }
    wait_proc(g, 10, &["cs:Connected", "ds:UpToDate/UpToDate"], 600)?;
    let oos = g.sh("grep -A2 '^10:' /proc/drbd | grep -o 'oos:[0-9]*'")?;
    ensure!(oos.trim() == "oos:0", "after the resync: {oos}");
    // Switch roles: b reads what a wrote. The barrier compares the two
    // checksums (its step names must be equal on both nodes).
    if g.node == 0 {
        let sum = checksum(g, "/dev/drbd10", MIB)?;
        drbd(g, "secondary --stacked r0-U")?;
        barrier(g, &format!("{round}: a secondary"))?;
        barrier(g, &format!("{round}: data {sum}"))?;
    } else {
        barrier(g, &format!("{round}: a secondary"))?;
        g.sh(&peer_up.replace(" up r0-U", " primary r0-U"))?;
        let sum = checksum(g, "/dev/drbd10", MIB)?;
        barrier(g, &format!("{round}: data {sum}"))?;
    }
    // Down on both (b first: it is Primary now).
    if g.node == 1 {
        g.sh(peer_down)?;
    }
    barrier(g, &format!("{round}: b done"))?;
    if g.node == 0 {
        drbd(g, "down --stacked r0-U")?;
        drbd(g, "down r0")?;
    }
    barrier(g, &format!("{round}: done"))?;
    Ok(())
}

/// r0-U connected and Primary, its metadata (at the end of /dev/drbd0)
/// has hot extents in the activity log: two copies of the device as it is
/// now (what a power cut leaves), one replayed by cairn, one by drbdmeta,
/// end up byte for byte equal.
fn al_replay_as_drbdmeta(g: &Guest) -> TestResult {
    let out = g.sh(&format!(
        "set -e
        dd if=/dev/drbd0 of=/tmp/c1.img bs=1M iflag=direct status=none
        cp /tmp/c1.img /tmp/c2.img
        l1=$(losetup -f --show /tmp/c1.img); l2=$(losetup -f --show /tmp/c2.img)
        printf 'resource x1 {{\\n on {h} {{ device /dev/drbd41; disk %s; meta-disk internal; }}\\n}}\\n' $l1 > /tmp/x1.conf
        {cairn} drbd dump-md $l1 | grep -E 'hot_extents|flags'
        {cairn} drbd -c /tmp/x1.conf apply-al x1
        drbdmeta --force 41 v08 $l2 internal apply-al
        losetup -d $l1; losetup -d $l2
        cmp /tmp/c1.img /tmp/c2.img && echo same
        rm -f /tmp/c1.img /tmp/c2.img",
        h = g.hostname(),
        cairn = lab::guest::CAIRN
    ))?;
    ensure!(
        out.contains("primary_ind") && !out.contains("hot_extents: []"),
        "no hot extents to replay:\n{out}"
    );
    ensure!(
        out.contains("extents marked") && out.trim_end().ends_with("same"),
        "cairn's and drbdmeta's apply-al differ:\n{out}"
    );
    Ok(())
}

fn offsite_replication_cairn_on_both(g: &Guest) -> TestResult {
    let cairn = format!("{} drbd -c {CONF}", lab::guest::CAIRN);
    offsite_round(
        g,
        "cc",
        &format!("{cairn} up r0-U"),
        &format!("{cairn} secondary r0-U 2>/dev/null || true; {cairn} down r0-U"),
    )
}

fn offsite_replication_drbdadm_on_b(g: &Guest) -> TestResult {
    offsite_round(
        g,
        "cd",
        &format!("drbdadm -c {CONF} up r0-U"),
        &format!(
            "drbdadm -c {CONF} secondary r0-U 2>/dev/null || true; drbdadm -c {CONF} down r0-U"
        ),
    )
}

fn main() {
    lab::main(Group {
        name: "vm_net",
        nodes: 2,
        mem_mib: 1024,
        timeout: Duration::from_secs(900),
        tests: vec![
            VmTest {
                name: "two_vms_tcp_round_trip",
                run: tcp_round_trip,
            },
            VmTest {
                name: "offsite_replication_cairn_on_both",
                run: offsite_replication_cairn_on_both,
            },
            VmTest {
                name: "offsite_replication_drbdadm_on_b",
                run: offsite_replication_drbdadm_on_b,
            },
        ],
        stream_log: false,
        boots: 1,
        disks: &[],
    })
}
