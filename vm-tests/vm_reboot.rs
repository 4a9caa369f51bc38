//! Tests across a real power cut: the group boots twice on the same
//! persistent disks, and each boot ends as lab boots do (`sync`, then an
//! immediate power-off), so whatever is still up in boot 1 is cut off.

#[path = "lab/mod.rs"]
mod lab;
mod stack;

use std::time::Duration;

use lab::{Group, Guest, TestResult, VmTest};

const SUM: &str = "/lab/out/rp.sum";
const STACK_SUM: &str = "/lab/out/stack.sum";
const STACK_FILE: &str = "/persist/stack.toml";

fn conf(g: &Guest) -> TestResult {
    std::fs::write(
        "/etc/drbd.conf",
        format!(
            "resource rp {{\n  on {} {{\n    device /dev/drbd5;\n    disk {};\n    \
             address 127.0.0.1:7795;\n    meta-disk internal;\n  }}\n}}\n",
            g.hostname(),
            g.disk(0)
        ),
    )
    .map_err(|e| format!("cannot write /etc/drbd.conf: {e}"))?;
    g.sh("grep -q '^drbd ' /proc/modules || modprobe drbd; ip link set lo up")?;
    Ok(())
}

/// Boot 1: rp Primary, data written all over the device (many activity-log
/// extents hot), then the power is cut without `down`. Boot 2: the kernel
/// alone refuses the unclean metadata (165); `cairn drbd up` replays the
/// activity log, attaches, and the data reads back.
fn power_cut_while_primary(g: &Guest) -> TestResult {
    conf(g)?;
    let dev = g.disk(0);
    if g.boot() == 1 {
        g.cairn(&["drbd", "create-md", "rp", "--force"])?;
        g.cairn(&["drbd", "up", "rp"])?;
        g.cairn(&["drbd", "primary", "rp", "--force"])?;
        g.sh(
            "for i in 0 5 10 15 20 25 30 35 40 45 50 55 60 70 80 90 100 110; do
                dd if=/dev/urandom of=/dev/drbd5 bs=1M count=1 seek=$i oflag=direct status=none
            done",
        )?;
        let sum = g.sh("dd if=/dev/drbd5 bs=1M count=112 iflag=direct status=none | sha256sum")?;
        std::fs::write(SUM, &sum).map_err(|e| format!("cannot keep the checksum: {e}"))?;
        return Ok(());
    }
    let md = g.cairn(&["drbd", "dump-md", &dev])?;
    ensure!(
        md.contains("clean: false") && md.contains("was Primary"),
        "metadata after the power cut:\n{md}"
    );
    let raw = g.sh(&format!(
        "/lib/drbd/drbdsetup-84 new-resource rp; /lib/drbd/drbdsetup-84 new-minor rp 5 0
        /lib/drbd/drbdsetup-84 attach 5 {dev} {dev} internal 2>&1 || true
        /lib/drbd/drbdsetup-84 down rp"
    ))?;
    ensure!(
        raw.contains("(165)"),
        "the kernel attached unclean metadata: {raw}"
    );
    let up = g.cairn(&["drbd", "up", "rp"])?;
    ensure!(up.contains("apply-al"), "up after the power cut: {up}");
    g.cairn(&["drbd", "primary", "rp"])?;
    let sum = g.sh("dd if=/dev/drbd5 bs=1M count=112 iflag=direct status=none | sha256sum")?;
    let kept = std::fs::read_to_string(SUM).map_err(|e| format!("no checksum from boot 1: {e}"))?;
    ensure!(sum == kept, "data after the power cut differs");
    let p = g.sh("cat /proc/drbd")?;
    ensure!(
        p.contains(" 5: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown"),
        "/proc/drbd:\n{p}"
    );
    g.cairn(&["drbd", "down", "rp"])?;
    Ok(())
}

/// What a host keeps across reboots (LXC configs, cairn's journal, the
/// stack file) lives on a disk of its own here: the lab guest's root is
/// rebuilt at every boot.
fn persist(g: &Guest, first: bool) -> TestResult {
    let dev = g.disk(5);
    if first {
        g.sh(&format!("mkfs.ext4 -q -F {dev}"))?;
    }
    g.sh(&format!(
        "mkdir -p /persist && mount {dev} /persist && mkdir -p /persist/lxc /persist/cairn /persist/drbd.d
         mount --bind /persist/lxc /var/lib/lxc && mkdir -p /var/lib/cairn && mount --bind /persist/cairn /var/lib/cairn"
    ))?;
    Ok(())
}

/// Boot 1: `cairn apply` of the lab stack on md RAID1s of four disks, data
/// written in the container, and the power cut with everything up. Boot 2:
/// the OS assembles the RAIDs, `cairn up` brings the stack back (DRBD's
/// activity log replayed, the cache and the pool activated), the container
/// runs again, and its data is intact.
fn stack_survives_a_power_cut(g: &Guest) -> TestResult {
    let (h, s) = ([g.disk(1), g.disk(2)], [g.disk(3), g.disk(4)]);
    if g.boot() == 1 {
        persist(g, true)?;
        stack::make_raids(g, [&h[0], &h[1]], [&s[0], &s[1]])?;
        let lab = std::fs::read_to_string(stack::LAB_TOML).map_err(|e| e.to_string())?;
        std::fs::write(
            STACK_FILE,
            format!("[host]\ndrbd_config_dir = \"/persist/drbd.d\"\n\n{lab}"),
        )
        .map_err(|e| e.to_string())?;
        stack::configure_host(g, STACK_FILE)?;
        g.cairn(&["apply", STACK_FILE])?;
        let sum = stack::write_in(g, "my-container", "written-before-the-power-cut")?;
        std::fs::write(STACK_SUM, sum).map_err(|e| format!("cannot keep the checksum: {e}"))?;
        g.sh("sync")?;
        return Ok(());
    }
    persist(g, false)?;
    stack::assemble_raids(g, [&h[0], &h[1]], [&s[0], &s[1]])?;
    stack::configure_host(g, STACK_FILE)?;
    let up = g.cairn(&["up", STACK_FILE])?;
    ensure!(up.contains("lxc-start my-container"), "cairn up:\n{up}");
    stack::drbd_primary(g)?;
    stack::lvm2_agrees(g)?;
    stack::seed_structure(g)?;
    ensure!(
        stack::container_state(g, "my-container")? == "RUNNING",
        "not running after up"
    );
    let kept =
        std::fs::read_to_string(STACK_SUM).map_err(|e| format!("no checksum from boot 1: {e}"))?;
    ensure!(
        stack::read_in(g, "my-container")? == kept,
        "the container's data changed across the power cut"
    );
    let plan = g.cairn(&["plan", STACK_FILE])?;
    ensure!(plan.contains("nothing to do"), "plan after up:\n{plan}");
    g.cairn(&["down", STACK_FILE])?;
    Ok(())
}

fn main() {
    lab::main(Group {
        name: "vm_reboot",
        nodes: 1,
        mem_mib: 2048,
        timeout: Duration::from_secs(600),
        tests: vec![
            VmTest {
                name: "power_cut_while_primary",
                run: power_cut_while_primary,
            },
            VmTest {
                name: "stack_survives_a_power_cut",
                run: stack_survives_a_power_cut,
            },
        ],
        stream_log: false,
        boots: 2,
        disks: &[
            ("rp", 128),
            ("h1", stack::HDD_MIB),
            ("h2", stack::HDD_MIB),
            ("s1", stack::SSD_MIB),
            ("s2", stack::SSD_MIB),
            ("persist", 256),
        ],
    });
}
