//! The demo (README): the seed's whole stack from one file, in a lab VM.
//! `cairn apply examples/lab.toml` on md RAID1s of loop devices, two
//! containers made and started, data written into them, `cairn down`,
//! `cairn up`, the data read back, and `cairn status`. Not part of
//! `cargo test`: run `vm-tests/lab.sh demo`.

#[path = "lab/mod.rs"]
mod lab;
mod stack;

use std::time::{Duration, Instant};

use lab::{Group, Guest, TestResult, VmTest};
use stack::LAB_TOML;

fn banner(text: &str) {
    println!(
        "\n=== {text} {}",
        "=".repeat(70usize.saturating_sub(text.len()))
    );
}

/// Runs cairn and shows what it printed.
fn show(g: &Guest, args: &[&str]) -> Result<String, String> {
    println!("\n$ cairn {}", args.join(" "));
    let started = Instant::now();
    let out = g.cairn(args)?;
    print!("{out}");
    println!("({:.2} s)", started.elapsed().as_secs_f64());
    Ok(out)
}

fn demo(g: &Guest) -> TestResult {
    banner("the lab's disks: md RAID1 of two 3 GiB loop devices (HDD), of two 600 MiB (SSD)");
    let mut devs = Vec::new();
    for (name, mib) in [
        ("hdd-a", stack::HDD_MIB),
        ("hdd-b", stack::HDD_MIB),
        ("ssd-a", stack::SSD_MIB),
        ("ssd-b", stack::SSD_MIB),
    ] {
        // Kept for the whole demo: dropping one detaches its loop device.
        devs.push(g.loop_disk(name, mib)?);
    }
    stack::make_raids(
        g,
        [&devs[0].dev, &devs[1].dev],
        [&devs[2].dev, &devs[3].dev],
    )?;
    stack::configure_host(g, LAB_TOML)?;
    println!("{}", g.sh("cat /proc/mdstat")?);

    banner("the stack file");
    println!(
        "{}",
        std::fs::read_to_string(LAB_TOML).map_err(|e| e.to_string())?
    );

    banner("plan, then apply");
    show(g, &["plan", LAB_TOML])?;
    show(g, &["apply", LAB_TOML])?;
    show(g, &["apply", LAB_TOML])?;

    banner("two containers, data written into them");
    let mut sums = Vec::new();
    for name in ["web", "db"] {
        show(
            g,
            &[
                "container",
                "create",
                name,
                "--size",
                "300M",
                "--start",
                "--autostart",
                "-f",
                LAB_TOML,
            ],
        )?;
        sums.push(stack::write_in(g, name, &format!("data-of-{name}"))?);
    }
    show(g, &["container", "list", "-f", LAB_TOML])?;

    banner("down, then up (the seed's startup script, in one call)");
    show(g, &["down", LAB_TOML])?;
    println!("{}", g.sh("cat /proc/drbd; dmsetup ls")?);
    show(g, &["up", LAB_TOML])?;
    for (name, sum) in ["web", "db"].iter().zip(&sums) {
        let now = stack::read_in(g, name)?;
        ensure!(now == *sum, "{name}'s data changed across down/up");
        println!("{name}: data intact ({now})");
    }

    banner("status");
    show(g, &["status", LAB_TOML])?;
    banner("lvm2 and /proc/drbd, the oracles");
    stack::lvm2_agrees(g)?;
    println!(
        "{}",
        g.sh("lvs -a -o vg_name,lv_name,lv_attr,lv_size,pool_lv,origin,data_percent,segtype 2>/dev/null; cat /proc/drbd; lxc-ls -f")?
    );

    banner("tearing down");
    show(g, &["down", LAB_TOML])?;
    g.sh("mdadm --stop /dev/md0 /dev/md1")?;
    drop(devs);
    Ok(())
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
