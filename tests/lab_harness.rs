//! Host tests of the VM harness's pure logic (no VM booted).

#[allow(dead_code)]
#[path = "../vm-tests/lab/host.rs"]
mod host;
