//! The demo (README): builds the seed's stack in a lab VM with lvm2 +
//! drbdadm + lxc (the reference scenario), then shows what cairn sees of it
//! so far. Not part of `cargo test`: run `vm-tests/lab.sh demo`.

#[path = "lab/mod.rs"]
mod lab;
mod reference;

use std::time::{Duration, Instant};

use lab::{Group, Guest, TestResult, VmTest};

fn banner(text: &str) {
    println!(
        "\n=== {text} {}",
        "=".repeat(70usize.saturating_sub(text.len()))
    );
}

fn demo(g: &Guest) -> TestResult {
    banner("the seed's stack, built the way the seed does it (lvm2, drbdadm, lxc)");
    let disks = reference::prepare(g)?;
    println!(
        "HDD {} ({} MiB), SSD {} ({} MiB)",
        disks.hdd.dev,
        reference::HDD_MIB,
        disks.ssd.dev,
        reference::SSD_MIB
    );
    let result = (|| -> TestResult {
        let steps = reference::steps(&disks);
        let total = steps.len();
        let started = Instant::now();
        for (i, step) in steps.iter().filter(|s| s.name != "lxc_stop").enumerate() {
            println!("\n--> [{}/{total}] {}", i + 1, step.name);
            if let reference::Ran::KnownError = step.run(g)? {
                println!("    (the seed says to ignore this error)")
            }
            (step.check)(g, &disks).map_err(|e| format!("step {}: {e}", step.name))?;
        }
        println!("\nstack built in {:.1} s", started.elapsed().as_secs_f64());

        banner("what is up");
        g.sh("lvs -a -o vg_name,lv_name,lv_attr,lv_size,pool_lv,origin,data_percent,segtype")?;
        g.sh("cat /proc/drbd")?;
        g.sh("lxc-ls -f")?;

        banner("cairn: the kernel's device-mapper, read through ioctls (no dmsetup)");
        g.cairn(&["dm", "targets"])?;
        g.cairn(&["dm", "ls"])?;
        banner("dmsetup, the oracle");
        g.run(&["dmsetup", "ls"])?;

        banner("cairn: LVM reports read from the on-disk metadata (no lvm2)");
        // No filter needed: the lower copies of stacked PVs (cache origin,
        // DRBD backing LV, /dev/drbd0) are recognised as such.
        g.cairn(&["pvs"])?;
        g.cairn(&["vgs"])?;
        g.cairn(&["lvs", "-a"])?;
        banner("lvm2, the oracle (with the seed's filter)");
        g.sh("pvs && vgs")?;
        Ok(())
    })();
    banner("tearing down (reverse order)");
    let down = reference::teardown(g);
    result?;
    down
}

fn main() {
    lab::main(Group {
        name: "vm_demo",
        nodes: 1,
        mem_mib: 2048,
        timeout: Duration::from_secs(400),
        tests: vec![VmTest {
            name: "demo",
            run: demo,
        }],
        stream_log: true,
        boots: 1,
        disks: &[],
    })
}
