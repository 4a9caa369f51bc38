#!/bin/bash
# cairn lab, stage 2: runs on the host's userland inside the guest.
# Mounts the kernel filesystems, loads the storage modules, configures lvm2 for
# a system without udev, brings up the lab network when asked, then runs the
# job the host wrote to /lab/out/job.sh and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
out=/lab/out

log() { echo "cairn-lab: $*"; }
poweroff_now() {
    sync
    echo o > /proc/sysrq-trigger
    sleep 60
}
setup_failed() {
    log "stage2: $*"
    echo "$*" > "$out/setup-error"
    echo "CAIRN-LAB-SETUP-FAILED"
    poweroff_now
}

mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
# /tmp holds the sparse files behind the loop "disks": let it use all memory.
mount -t tmpfs -o mode=1777,size=100% tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run/lock /run/lvm /var/lock

param() { sed -n "s/.*\bcairn\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

# Host paths the tests need at the same place (project, target dir): any
# that the top-level overlays do not show (say, a clone under /tmp) gets an
# overlay of its own from the 9p host root.
n=0
for p in $(param paths | tr ':' ' '); do
    [ -e "$p" ] && continue
    [ -d "/.host$p" ] || setup_failed "host path $p is not visible over 9p"
    n=$((n + 1))
    mkdir -p "$p" "/.ov/path$n/upper" "/.ov/path$n/work"
    mount -t overlay overlay -o "lowerdir=/.host$p,upperdir=/.ov/path$n/upper,workdir=/.ov/path$n/work" "$p" \
        || setup_failed "cannot overlay $p"
done
node=$(param node)
hostname "$(param hostname)"
ip link set lo up || setup_failed "ip link set lo up failed (package iproute2)"

# Storage modules (one list, owned by the harness, passed on the command line).
for m in $(param modules | tr ',' ' '); do
    modprobe "$m" || setup_failed "modprobe $m failed: is the kernel's module tree /lib/modules/$(uname -r) complete (package linux-image-amd64)?"
done

# lvm2 without udev: it must not wait for udev nor expect it to make nodes.
mkdir -p /etc/lvm
cat > /etc/lvm/lvmlocal.conf <<'LVM'
# Written by the cairn lab: no udev runs in the lab VM.
activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
devices {
    obtain_device_list_from_udev = 0
}
LVM

# The lab network: one virtio NIC on a wire shared only with the other lab VM.
addr=$(param addr)
if [ -n "$addr" ]; then
    modprobe virtio_net || setup_failed "modprobe virtio_net failed"
    dev=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
    [ -n "$dev" ] || setup_failed "no network device in a two-VM group"
    ip addr add "$addr" dev "$dev" && ip link set "$dev" up || setup_failed "cannot configure $dev"
    log "network: $dev $addr"
fi

echo "CAIRN-LAB-READY node=$node uptime=$(cut -d' ' -f1 /proc/uptime)"
if [ "$(param shell)" = 1 ]; then
    echo "cairn-lab: debug shell; the project is at its host path; exit to power off."
    setsid -c bash -l </dev/ttyS0 >/dev/ttyS0 2>&1
    poweroff_now
fi
[ -r "$out/job.sh" ] || setup_failed "no job at $out/job.sh"
bash "$out/job.sh" > "$out/job.log" 2>&1
echo $? > "$out/exit.tmp" && mv "$out/exit.tmp" "$out/exit"
echo "CAIRN-LAB-DONE exit=$(cat "$out/exit")"
poweroff_now
