#!/bin/bash
# The cairn lab, one entry point (docs/lab.md):
#   vm-tests/lab.sh setup          install what the lab needs (Debian 12, as root)
#   vm-tests/lab.sh test           every test: host tests, then the VM groups
#   vm-tests/lab.sh demo           the demo, streamed from its VM
#   vm-tests/lab.sh bench [FILTER] the paired benchmarks in one boot
#   vm-tests/lab.sh vm GROUP [ARGS]  one VM group, e.g. `vm vm_dm dm_ls`
#   vm-tests/lab.sh shell          a root shell in a lab VM (Ctrl-a x quits)
#   vm-tests/lab.sh run SCRIPT [OUTDIR]  a bash script in a lab VM; files it puts in $OUT
#                                  come back to OUTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the VM (qemu, kernel, busybox for the initramfs), the
# oracles and tools the guest runs from the shared host root, and the C
# headers the devicemapper crate builds against.
PACKAGES=(
    qemu-system-x86 linux-image-amd64 busybox-static kmod iproute2
    lvm2 drbd-utils thin-provisioning-tools lxc e2fsprogs mdadm util-linux
    pkg-config libdevmapper-dev libclang-dev libudev-dev g++
    # libblkid.a: cairn's signature detector, linked statically.
    libblkid-dev
    # Oracles of the signature tests: one tool per kind of signature.
    xfsprogs btrfs-progs f2fs-tools squashfs-tools xorriso cryptsetup-bin
    bcache-tools dosfstools fdisk
)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

setup() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "lab: installing ${missing[*]}"
        as_root apt-get update -qq
        # No recommends: they pull a desktop's worth of qemu extras, and on
        # some images conflict with a newer qemu-utils already installed.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! command -v cargo >/dev/null; then
        [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null; then
        # Debian 12's own rustc (1.63) is too old for cairn's dependencies.
        echo "lab: cargo not found: install Rust >= 1.82 with rustup (https://rustup.rs)" >&2
        exit 1
    fi
    # The lab reads /boot/vmlinuz-* (root-only on Debian) and boots QEMU.
    if [ "$(id -u)" != 0 ]; then
        echo "lab: the VM tests read /boot/vmlinuz-* and must run as root (sudo $0 $*)" >&2
        exit 1
    fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
    setup)
        setup
        ;;
    test)
        setup
        # Host tests, then each VM group in its own boot (cargo runs the
        # test binaries one after another).
        CAIRN_LAB=1 cargo test --no-fail-fast "$@"
        ;;
    demo)
        setup
        CAIRN_LAB=1 cargo test --test vm_demo "$@"
        ;;
    bench)
        setup
        cargo bench --bench lab -- "$@"
        ;;
    vm)
        setup
        group=${1:?usage: lab.sh vm GROUP [TEST-FILTER...]}
        shift
        # Some groups run the crate's example programs (vm_stack: embed).
        cargo build --examples -q
        CAIRN_LAB=1 cargo test --test "$group" -- "$@"
        ;;
    run)
        setup
        script=${1:?usage: lab.sh run SCRIPT [OUTDIR]}
        CAIRN_LAB_SCRIPT=$script CAIRN_LAB_SCRIPT_OUT=${2:-} cargo test --test vm_script
        ;;
    shell)
        setup
        CAIRN_LAB=shell cargo test --test vm_dm
        ;;
    *)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        [ "$cmd" = help ] || exit 2
        ;;
esac
