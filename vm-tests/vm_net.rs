//! Two lab VMs on a private wire: the ground the DRBD peer tests stand on.

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

fn main() {
    lab::main(Group {
        name: "vm_net",
        nodes: 2,
        mem_mib: 1024,
        timeout: Duration::from_secs(240),
        tests: vec![VmTest {
            name: "two_vms_tcp_round_trip",
            run: tcp_round_trip,
        }],
        stream_log: false,
    })
}
