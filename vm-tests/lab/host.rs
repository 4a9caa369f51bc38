//! Host side of the lab: finds the kernel and tools, builds the initramfs and
//! boots QEMU (TCG) with the host's root shared read-only over 9p.
//!
//! Every QEMU process is a child that dies with us (PR_SET_PDEATHSIG), is
//! killed at its timeout and again when its `Vm` handle drops: none is ever
//! left behind.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kernel modules that stage 1 needs to reach the 9p shares.
const STAGE1_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/// Kernel modules every lab guest loads (stage 2, with modprobe). One list:
/// every test can count on them.
pub const GUEST_MODULES: &[&str] = &[
    "dm-mod",
    "dm-thin-pool",
    "dm-cache",
    "dm-cache-smq",
    "dm-snapshot",
    "dm-flakey",
    "drbd",
    "loop",
    "ext4",
    "raid1",
    "virtio_blk",
];

/// The lab's private wire between two VMs (exists only inside QEMU's socket
/// netdev, tunnelled over host loopback UDP).
pub const NODE_ADDRS: [&str; 2] = ["10.77.0.1", "10.77.0.2"];
pub const NODE_NAMES: [&str; 2] = ["a", "b"];
pub const NODE_HOSTNAMES: [&str; 2] = ["cairn-a", "cairn-b"];

fn missing(what: &str, package: &str) -> String {
    format!("{what}: install it with `apt-get install {package}` (or run `vm-tests/lab.sh setup`)")
}

/// The Debian kernel the lab boots.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub version: String,
    pub vmlinuz: PathBuf,
    pub modules_dir: PathBuf,
}

/// Picks the newest /boot/vmlinuz-* that has a module tree (or the version in
/// CAIRN_LAB_KERNEL).
pub fn find_kernel() -> Result<Kernel, String> {
    let wanted = std::env::var("CAIRN_LAB_KERNEL").ok();
    let mut versions: Vec<String> = fs::read_dir("/boot")
        .map_err(|e| {
            format!(
                "cannot read /boot ({e}); {}",
                missing("no kernel", "linux-image-amd64")
            )
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("vmlinuz-")
                .map(str::to_owned)
        })
        .filter(|v| {
            Path::new("/lib/modules")
                .join(v)
                .join("modules.dep")
                .exists()
        })
        .collect();
    versions.sort_by_key(|v| version_key(v));
    let version = match wanted {
        Some(w) if versions.contains(&w) => w,
        Some(w) => {
            return Err(format!(
                "CAIRN_LAB_KERNEL={w}: no /boot/vmlinuz-{w} with /lib/modules/{w}"
            ))
        }
        None => versions.pop().ok_or_else(|| {
            missing(
                "no kernel with modules in /boot and /lib/modules",
                "linux-image-amd64",
            )
        })?,
    };
    let kernel = Kernel {
        vmlinuz: PathBuf::from(format!("/boot/vmlinuz-{version}")),
        modules_dir: PathBuf::from(format!("/lib/modules/{version}")),
        version,
    };
    fs::File::open(&kernel.vmlinuz).map_err(|e| {
        format!(
            "cannot read {}: {e} (the lab must run as root)",
            kernel.vmlinuz.display()
        )
    })?;
    Ok(kernel)
}

fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Everything a boot needs, checked up front with messages naming packages.
#[derive(Debug, Clone)]
pub struct Lab {
    pub kernel: Kernel,
    pub qemu: PathBuf,
    pub busybox: PathBuf,
    pub work_dir: PathBuf,
}

impl Lab {
    pub fn discover(work_dir: &Path) -> Result<Lab, String> {
        let qemu = which("qemu-system-x86_64")
            .ok_or_else(|| missing("qemu-system-x86_64 not found", "qemu-system-x86"))?;
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| missing("busybox not found", "busybox-static"))?;
        if !is_static_elf(&busybox)? {
            return Err(missing(
                &format!(
                    "{} is dynamically linked and cannot run in the initramfs",
                    busybox.display()
                ),
                "busybox-static",
            ));
        }
        let kernel = find_kernel()?;
        let deps = ModuleDeps::load(&kernel)?;
        for m in STAGE1_MODULES.iter().chain(GUEST_MODULES) {
            if deps.path_of(m).is_none() {
                return Err(missing(
                    &format!(
                        "kernel module {m} not found in {}",
                        kernel.modules_dir.display()
                    ),
                    "linux-image-amd64",
                ));
            }
        }
        fs::create_dir_all(work_dir)
            .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
        Ok(Lab {
            kernel,
            qemu,
            busybox,
            work_dir: work_dir.to_owned(),
        })
    }

    /// Builds (or reuses) the initramfs: busybox, the stage-1 modules, init and stage2.sh.
    pub fn initramfs(&self) -> Result<PathBuf, String> {
        let deps = ModuleDeps::load(&self.kernel)?;
        let modules = deps.closure(STAGE1_MODULES)?;
        let path = self
            .work_dir
            .join(format!("initramfs-{}.cpio", self.kernel.version));
        // Built under a unique name and renamed into place: trials that boot
        // at the same time each write their own and the rename is atomic.
        static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("cpio.{}.{n}.tmp", std::process::id()));
        let file =
            fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut w = io::BufWriter::new(file);
        let mut ino = 1u32;
        let mut entry = |w: &mut io::BufWriter<fs::File>,
                         name: &str,
                         mode: u32,
                         data: &[u8],
                         rdev: Option<(u32, u32)>| {
            let mut b = cpio::newc::Builder::new(name).ino(ino).mode(mode).nlink(1);
            if let Some((maj, min)) = rdev {
                b = b.rdev_major(maj).rdev_minor(min);
            }
            ino += 1;
            let mut out = b.write(w, data.len() as u32);
            out.write_all(data)?;
            out.finish().map(|_| ())
        };
        let result = (|| -> io::Result<()> {
            for dir in ["bin", "dev", "proc", "sys", "modules", "newroot"] {
                entry(&mut w, dir, 0o040755, b"", None)?;
            }
            entry(&mut w, "dev/console", 0o020600, b"", Some((5, 1)))?;
            entry(
                &mut w,
                "bin/busybox",
                0o100755,
                &fs::read(&self.busybox)?,
                None,
            )?;
            entry(
                &mut w,
                "init",
                0o100755,
                include_bytes!("../guest/init"),
                None,
            )?;
            entry(
                &mut w,
                "stage2.sh",
                0o100755,
                include_bytes!("../guest/stage2.sh"),
                None,
            )?;
            let mut order = String::new();
            for (name, file) in &modules {
                entry(
                    &mut w,
                    &format!("modules/{name}.ko"),
                    0o100644,
                    &fs::read(file)?,
                    None,
                )?;
                order.push_str(name);
                order.push('\n');
            }
            entry(&mut w, "modules/order", 0o100644, order.as_bytes(), None)?;
            cpio::newc::trailer(&mut w)?;
            w.flush()
        })();
        result.map_err(|e| format!("cannot write the initramfs {}: {e}", tmp.display()))?;
        fs::rename(&tmp, &path).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))?;
        Ok(path)
    }
}

fn is_static_elf(path: &Path) -> Result<bool, String> {
    let data = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap()) as usize;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return Err(format!("{} is not a 64-bit ELF file", path.display()));
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    Ok((0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= data.len() && u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) != PT_INTERP
    }))
}

/// The kernel's modules.dep, to load stage-1 modules in dependency order.
struct ModuleDeps {
    dir: PathBuf,
    lines: Vec<(String, Vec<String>)>,
}

impl ModuleDeps {
    fn load(kernel: &Kernel) -> Result<ModuleDeps, String> {
        let file = kernel.modules_dir.join("modules.dep");
        let text = fs::read_to_string(&file).map_err(|e| {
            format!(
                "cannot read {}: {e}; {}",
                file.display(),
                missing("", "linux-image-amd64")
            )
        })?;
        let lines = text
            .lines()
            .filter_map(|l| {
                let (m, deps) = l.split_once(':')?;
                Some((
                    m.to_owned(),
                    deps.split_whitespace().map(str::to_owned).collect(),
                ))
            })
            .collect();
        Ok(ModuleDeps {
            dir: kernel.modules_dir.clone(),
            lines,
        })
    }

    fn name_of(rel: &str) -> String {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        base.trim_end_matches(".ko").replace('-', "_")
    }

    fn path_of(&self, name: &str) -> Option<&(String, Vec<String>)> {
        let want = name.replace('-', "_");
        self.lines.iter().find(|(m, _)| Self::name_of(m) == want)
    }

    /// The modules and their dependencies, each after what it depends on.
    fn closure(&self, names: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
        let mut done = BTreeSet::new();
        let mut out = Vec::new();
        fn visit(
            deps: &ModuleDeps,
            name: &str,
            done: &mut BTreeSet<String>,
            out: &mut Vec<(String, PathBuf)>,
        ) -> Result<(), String> {
            let (rel, requires) = deps
                .path_of(name)
                .ok_or_else(|| format!("kernel module {name} missing from modules.dep"))?
                .clone();
            let key = ModuleDeps::name_of(&rel);
            if !done.insert(key.clone()) {
                return Ok(());
            }
            for dep in requires.iter().rev() {
                visit(deps, &ModuleDeps::name_of(dep), done, out)?;
            }
            out.push((key, deps.dir.join(&rel)));
            Ok(())
        }
        for n in names {
            visit(self, n, &mut done, &mut out)?;
        }
        Ok(out)
    }
}

/// A network link shared by the two VMs of a group: each VM sends UDP to the
/// other's port on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct Wire {
    pub ports: [u16; 2],
}

impl Wire {
    pub fn new() -> Result<Wire, String> {
        let port = || -> Result<u16, String> {
            let s = UdpSocket::bind("127.0.0.1:0")
                .map_err(|e| format!("no free UDP port on loopback: {e}"))?;
            Ok(s.local_addr().map_err(|e| e.to_string())?.port())
        };
        Ok(Wire {
            ports: [port()?, port()?],
        })
    }
}

/// What one VM boots with.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub label: String,
    /// Host paths the guest must see at the same place (the project, its
    /// target dir): stage 2 overlays any the top-level overlays miss
    /// (/tmp is a fresh tmpfs in the guest).
    pub paths: Vec<PathBuf>,
    pub node: usize,
    pub mem_mib: u32,
    pub out_dir: PathBuf,
    pub wire: Option<Wire>,
    pub interactive: bool,
    /// Host image files attached as virtio disks (/dev/vda, ...).
    pub disks: Vec<PathBuf>,
    /// Which boot of the group this is (1, 2, ...).
    pub boot: u32,
}

/// A running VM. Dropping it kills QEMU.
pub struct Vm {
    pub spec: VmSpec,
    child: Child,
    started: Instant,
    pub ready_after: Option<Duration>,
}

impl Vm {
    pub fn console_path(&self) -> PathBuf {
        self.spec.out_dir.join("console.log")
    }

    pub fn boot(lab: &Lab, initramfs: &Path, spec: VmSpec) -> Result<Vm, String> {
        let node = spec.node;
        let mut cmdline = vec![
            "console=ttyS0".to_owned(),
            "panic=-1".to_owned(),
            "oops=panic".to_owned(),
            "loglevel=4".to_owned(),
            "rdinit=/init".to_owned(),
            format!("cairn.node={}", NODE_NAMES[node]),
            format!("cairn.hostname={}", NODE_HOSTNAMES[node]),
            format!("cairn.modules={}", GUEST_MODULES.join(",")),
        ];
        let mut paths = Vec::new();
        for p in &spec.paths {
            let text = p
                .to_str()
                .filter(|t| t.starts_with('/') && !t.contains([' ', ':', '\t', '\n']));
            paths.push(text.ok_or_else(|| {
                format!(
                    "the lab cannot share {}: use a path without spaces or colons",
                    p.display()
                )
            })?);
        }
        cmdline.push(format!("cairn.paths={}", paths.join(":")));
        if spec.wire.is_some() {
            cmdline.push(format!("cairn.addr={}/24", NODE_ADDRS[node]));
        }
        if spec.interactive {
            cmdline.push("cairn.shell=1".to_owned());
        }
        cmdline.push(format!("cairn.boot={}", spec.boot));
        let mut cmd = Command::new(&lab.qemu);
        cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2"])
            .args(["-m", &spec.mem_mib.to_string()])
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ])
            .arg("-kernel")
            .arg(&lab.kernel.vmlinuz)
            .arg("-initrd")
            .arg(initramfs)
            .args(["-append", &cmdline.join(" ")])
            .args(["-device", "virtio-rng-pci"])
            .args([
                "-virtfs",
                "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            ])
            .arg("-virtfs")
            .arg(format!(
                "local,path={},mount_tag=labout,security_model=none",
                spec.out_dir.display()
            ));
        for disk in &spec.disks {
            // cache=unsafe is not used: what the guest synced must be on
            // the host file when the next boot reads it.
            cmd.arg("-drive").arg(format!(
                "file={},if=virtio,format=raw,cache=writeback",
                disk.display()
            ));
        }
        if let Some(wire) = spec.wire {
            let (mine, theirs) = (wire.ports[node], wire.ports[1 - node]);
            cmd.arg("-netdev")
                .arg(format!(
                    "socket,id=wire,udp=127.0.0.1:{theirs},localaddr=127.0.0.1:{mine}"
                ))
                .arg("-device")
                .arg(format!(
                    "virtio-net-pci,netdev=wire,mac=52:54:00:77:00:0{}",
                    node + 1
                ));
        }
        if spec.interactive {
            cmd.args(["-serial", "mon:stdio"]);
        } else {
            cmd.arg("-serial").arg(format!(
                "file:{}",
                spec.out_dir.join("console.log").display()
            ));
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
        }
        // SAFETY: set_pdeathsig only calls prctl, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(|e| io::Error::from_raw_os_error(e as i32))
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", lab.qemu.display()))?;
        Ok(Vm {
            spec,
            child,
            started: Instant::now(),
            ready_after: None,
        })
    }

    /// Polls once: Some(status) when QEMU has exited.
    fn poll(&mut self) -> Result<Option<std::process::ExitStatus>, String> {
        if self.ready_after.is_none() && tail_contains(&self.console_path(), "CAIRN-LAB-READY") {
            self.ready_after = Some(self.started.elapsed());
        }
        self.child
            .try_wait()
            .map_err(|e| format!("waiting for QEMU: {e}"))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn qemu_stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    pub fn wait_interactive(mut self) -> Result<(), String> {
        self.child
            .wait()
            .map_err(|e| format!("waiting for QEMU: {e}"))?;
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a VM ended.
#[derive(Debug, Clone)]
pub struct VmEnd {
    pub label: String,
    pub timed_out: bool,
    pub qemu_failed: Option<String>,
    pub elapsed: Duration,
    pub ready_after: Option<Duration>,
}

/// Waits for all VMs to power off, killing every one still running at the
/// deadline. With `follow`, copies that file to stdout as it grows (the demo
/// streams the guest's job log this way).
pub fn wait_all(
    vms: &mut [Vm],
    timeout: Duration,
    follow: Option<&Path>,
) -> Result<Vec<VmEnd>, String> {
    let deadline = Instant::now() + timeout;
    let mut ends: Vec<Option<VmEnd>> = vec![None; vms.len()];
    let mut followed = 0u64;
    loop {
        if let Some(path) = follow {
            followed = copy_new_bytes(path, followed);
        }
        for (i, vm) in vms.iter_mut().enumerate() {
            if ends[i].is_some() {
                continue;
            }
            if let Some(status) = vm.poll()? {
                let qemu_failed = (!status.success())
                    .then(|| format!("QEMU exited with {status}: {}", vm.qemu_stderr().trim()));
                ends[i] = Some(VmEnd {
                    label: vm.spec.label.clone(),
                    timed_out: false,
                    qemu_failed,
                    elapsed: vm.elapsed(),
                    ready_after: vm.ready_after,
                });
            }
        }
        if ends.iter().all(Option::is_some) {
            if let Some(path) = follow {
                copy_new_bytes(path, followed);
            }
            break;
        }
        if Instant::now() >= deadline {
            for (i, vm) in vms.iter_mut().enumerate() {
                if ends[i].is_none() {
                    vm.kill();
                    ends[i] = Some(VmEnd {
                        label: vm.spec.label.clone(),
                        timed_out: true,
                        qemu_failed: None,
                        elapsed: vm.elapsed(),
                        ready_after: vm.ready_after,
                    });
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ends.into_iter().map(Option::unwrap).collect())
}

/// Prints what was appended to `path` since `offset`; returns the new offset.
fn copy_new_bytes(path: &Path, offset: u64) -> u64 {
    let Ok(mut f) = fs::File::open(path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut buf = Vec::new();
    let n = f.read_to_end(&mut buf).unwrap_or(0) as u64;
    let mut out = io::stdout().lock();
    let _ = out.write_all(&buf).and_then(|_| out.flush());
    offset + n
}

fn tail_contains(path: &Path, needle: &str) -> bool {
    tail(path, 64 * 1024).contains(needle)
}

/// The last `max` bytes of a file, lossily decoded ("" when missing).
pub fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last `n` lines of a file.
pub fn tail_lines(path: &Path, n: usize) -> String {
    let text = tail(path, 256 * 1024);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Quotes a word for the guest's shell.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A fresh, empty results directory for one VM.
pub fn fresh_dir(path: &Path) -> Result<(), String> {
    if path.exists() {
        fs::remove_dir_all(path).map_err(|e| format!("cannot clean {}: {e}", path.display()))?;
    }
    fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

// Host unit tests of the harness's pure logic (run from tests/lab_harness.rs;
// the VM targets are built without the test harness, so this is left out there).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_survives_bash() {
        for word in [
            "plain",
            "two words",
            "it's",
            "$HOME",
            "a\"b",
            "",
            "--test-threads=1",
            "x;rm -rf /",
        ] {
            let quoted = shell_quote(word);
            let out = Command::new("bash")
                .args(["-c", &format!("printf %s {quoted}")])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                word,
                "quoted as {quoted}"
            );
        }
    }

    #[test]
    fn kernel_versions_sort_numerically() {
        let mut v = vec!["6.1.0-9-amd64", "6.1.0-56-amd64", "6.1.0-10-amd64"];
        v.sort_by_key(|s| version_key(s));
        assert_eq!(v, ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-56-amd64"]);
    }

    fn deps(text: &str) -> ModuleDeps {
        ModuleDeps {
            dir: PathBuf::from("/m"),
            lines: text
                .lines()
                .filter_map(|l| {
                    let (m, d) = l.split_once(':')?;
                    Some((
                        m.to_owned(),
                        d.split_whitespace().map(str::to_owned).collect(),
                    ))
                })
                .collect(),
        }
    }

    #[test]
    fn module_closure_loads_dependencies_first_and_once() {
        // modules.dep lists a module's dependencies with the deepest last.
        let d = deps(
            "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/md/dm-mod.ko:",
        );
        let names: Vec<String> = d
            .closure(&["9pnet_virtio", "9p"])
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "virtio_ring",
                "virtio",
                "9pnet",
                "9pnet_virtio",
                "netfs",
                "fscache",
                "9p"
            ]
        );
        // dashes and underscores name the same module, as modprobe treats them
        assert_eq!(
            d.closure(&["dm_mod"]).unwrap()[0].1,
            PathBuf::from("/m/kernel/drivers/md/dm-mod.ko")
        );
        assert!(d.closure(&["drbd"]).unwrap_err().contains("drbd"));
    }

    #[test]
    fn static_and_dynamic_binaries_are_told_apart() {
        // bash is dynamically linked on every Debian system.
        assert!(!is_static_elf(Path::new("/bin/bash")).unwrap());
        assert!(is_static_elf(Path::new("/etc/hostname")).is_err());
        if Path::new("/bin/busybox").exists() {
            let expected = !Command::new("ldd")
                .arg("/bin/busybox")
                .output()
                .unwrap()
                .status
                .success();
            assert_eq!(is_static_elf(Path::new("/bin/busybox")).unwrap(), expected);
        }
    }

    #[test]
    fn tail_lines_keeps_the_end() {
        let dir = std::env::temp_dir().join(format!("cairn-tail-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("console.log");
        let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
        fs::write(&file, text).unwrap();
        assert_eq!(tail_lines(&file, 2), "line 498\nline 499");
        assert_eq!(tail_lines(&dir.join("missing"), 5), "");
        fs::remove_dir_all(dir).unwrap();
    }
}
