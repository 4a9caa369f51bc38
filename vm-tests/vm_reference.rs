//! The reference scenario (seed-testcase3) with lvm2 + drbdadm + lxc, each
//! step checked: the oracle for the stack cairn builds.

#[path = "lab/mod.rs"]
mod lab;
mod reference;

use std::time::{Duration, Instant};

use lab::{Group, Guest, TestResult, VmTest};

fn seed_stack_with_lvm2_drbdadm_lxc(g: &Guest) -> TestResult {
    let disks = reference::prepare(g)?;
    let result = (|| -> TestResult {
        for step in reference::steps(&disks) {
            let started = Instant::now();
            if let reference::Ran::KnownError = step.run(g)? {
                println!("STEP {}: the seed's known error", step.name)
            }
            let took = started.elapsed();
            (step.check)(g, &disks).map_err(|e| format!("step {} ran, but: {e}", step.name))?;
            println!(
                "STEP {} ok in {:.0} ms",
                step.name,
                took.as_secs_f64() * 1000.0
            );
        }
        Ok(())
    })();
    let down = reference::teardown(g);
    result?;
    down
}

fn main() {
    lab::main(Group {
        name: "vm_reference",
        nodes: 1,
        mem_mib: 2048,
        timeout: Duration::from_secs(400),
        tests: vec![VmTest {
            name: "seed_stack_with_lvm2_drbdadm_lxc",
            run: seed_stack_with_lvm2_drbdadm_lxc,
        }],
        stream_log: false,
        boots: 1,
        disks: &[],
    })
}
