//! LVM2 metadata without lvm2 (src/meta), with lvm2 as the oracle: cairn's
//! reports equal lvm2's field by field on VGs with every segment type of the
//! seed; what cairn writes passes pvck/vgck and reads back in lvm2; the
//! metadata buffer wraps; cairn and lvm2 take turns on one VG.

#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use lab::{Group, Guest, TestResult, VmTest};
use serde_json::Value;

const LV_FIELDS: &str = "lv_name,vg_name,lv_uuid,lv_size,segtype,pool_lv,origin,lv_attr,lv_tags,data_lv,metadata_lv,lv_metadata_size,seg_count,stripes,stripe_size,chunk_size,transaction_id,thin_id,cache_mode,cache_policy,devices,seg_pe_ranges,lv_role,lv_layout,data_percent,metadata_percent";
const VG_FIELDS: &str = "vg_name,vg_uuid,vg_size,vg_free,vg_seqno,vg_extent_size,vg_extent_count,vg_free_count,pv_count,lv_count,snap_count,vg_attr,vg_tags,vg_mda_count,vg_mda_size,vg_mda_free";
const PV_FIELDS: &str = "pv_name,vg_name,pv_uuid,pv_size,pv_free,pv_used,pe_start,pv_pe_count,pv_pe_alloc_count,pv_attr,pv_tags,dev_size,pv_mda_count,pv_mda_size,pv_mda_free,pv_ext_vsn";

/// lvm2 sees LVs as PVs (the seed's DRBDVG on VG1/cachedlv).
const SCAN_LVS: &str = "--config devices{scan_lvs=1}";

fn rows(json: &str, kind: &str) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("bad JSON ({e}): {json}"))?;
    Ok(v["report"][0][kind].as_array().cloned().unwrap_or_default())
}

/// lvm2's report and cairn's, for one kind, compared row by row and field
/// by field. Data% and Meta% are live (dm-cache commits its metadata in the
/// background): when only they differ, both reports are taken again.
fn compare(g: &Guest, kind: &str, lvm: &str, cairn_args: &[&str]) -> TestResult {
    let mut tries = 0;
    loop {
        match compare_once(g, kind, lvm, cairn_args) {
            Err(e) if tries < 4 && e.lines().skip(1).all(|l| l.contains("_percent:")) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(1500));
                println!("{kind}: only live percentages differed; again ({e})");
            }
            other => return other,
        }
    }
}

fn compare_once(g: &Guest, kind: &str, lvm: &str, cairn_args: &[&str]) -> TestResult {
    let theirs = rows(&g.sh(lvm)?, kind)?;
    let ours = rows(&g.cairn(cairn_args)?, kind)?;
    ensure!(
        !theirs.is_empty() || kind == "lv",
        "lvm2 reported no {kind} rows: `{lvm}`"
    );
    let mut diffs = Vec::new();
    if theirs.len() != ours.len() {
        diffs.push(format!(
            "{} rows from lvm2, {} from cairn",
            theirs.len(),
            ours.len()
        ));
    }
    for (t, o) in theirs.iter().zip(&ours) {
        for (field, value) in t.as_object().into_iter().flatten() {
            if o.get(field) != Some(value) {
                diffs.push(format!(
                    "{kind} {}: {field}: lvm2 {value}, cairn {}",
                    t[format!("{kind}_name")],
                    o.get(field).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    ensure!(
        diffs.is_empty(),
        "cairn {cairn_args:?} differs from `{lvm}`:\n{}",
        diffs.join("\n")
    );
    println!("{kind}: {} rows equal", theirs.len());
    Ok(())
}

fn compare_all(g: &Guest, vgs: &[&str], devices: &str) -> TestResult {
    let names = vgs.join(" ");
    let select: Vec<String> = vgs.iter().map(|v| format!("vg_name={v}")).collect();
    compare(
        g,
        "lv",
        &format!(
            "lvs {SCAN_LVS} -a --reportformat json --units b --nosuffix -o {LV_FIELDS} {names}"
        ),
        &["--devices", devices, "lvs", "-a", "--json", &vgs.join(",")],
    )?;
    compare(
        g,
        "vg",
        &format!("vgs {SCAN_LVS} --reportformat json --units b --nosuffix -o {VG_FIELDS} {names}"),
        &["--devices", devices, "vgs", "--json", &vgs.join(",")],
    )?;
    compare(
        g,
        "pv",
        &format!(
            "pvs {SCAN_LVS} --reportformat json --units b --nosuffix -o {PV_FIELDS} --select '{}'",
            select.join(" || ")
        ),
        &[
            "--devices",
            devices,
            "pvs",
            "--json",
            "--vg",
            &vgs.join(","),
        ],
    )
}

/// lvm2 builds every segment type of the seed; cairn reports it as lvm2 does,
/// active and inactive.
fn reports_equal_lvm2s(g: &Guest) -> TestResult {
    let (b, c, d) = (
        g.loop_disk("b", 512)?,
        g.loop_disk("c", 512)?,
        g.loop_disk("d", 256)?,
    );
    let setup = format!(
        "pvcreate -q {b} {c} {d}
vgcreate -q vgall {b} {c} {d}
vgchange -q --addtag site_a --addtag rack-7 vgall
lvcreate -q -y -L 40M -n plain vgall {b}
lvchange -q --addtag keep vgall/plain
lvcreate -q -y -i 2 -I 64k -L 32M -n striped vgall {b} {c}
lvcreate -q -y -L 64M -n tp vgall {b}
lvcreate -q -y -L 8M -n tpmeta vgall {b}
lvconvert -q -y --type thin-pool --poolmetadata vgall/tpmeta vgall/tp
lvcreate -q -y -V 100M -T vgall/tp -n thin1
lvcreate -q -y -V 50M -T vgall/tp -n thin2
lvcreate -q -y -s -n thin1snap vgall/thin1
lvcreate -q -y -L 100M -n cached vgall {c}
lvcreate -q -y -L 8M -n cmeta vgall {d}
lvcreate -q -y -L 60M -n cdata vgall {d}
lvconvert -q -y --type cache-pool --cachemode writethrough --poolmetadata vgall/cmeta vgall/cdata
lvconvert -q -y --type cache --cachepool vgall/cdata vgall/cached
lvcreate -q -y -L 60M -n origin vgall {c}
lvcreate -q -y -L 12M -s -n thick vgall/origin
pvcreate -q {SCAN_LVS} /dev/vgall/cached
vgcreate -q {SCAN_LVS} vgnested /dev/vgall/cached
lvcreate -q -y {SCAN_LVS} -L 20M -n inner vgnested",
        b = b.dev,
        c = c.dev,
        d = d.dev
    );
    g.sh(&setup)?;
    let devices = format!(
        "{},{},{},/dev/mapper/vgall-cached,/dev/mapper/vgall-cached_corig",
        b.dev, c.dev, d.dev
    );
    let result = (|| {
        compare_all(g, &["vgall", "vgnested"], &devices)?;
        // The nested VG's PV is the cached LV, not the origin under it, named as lvm2 names it.
        let pvs = rows(
            &g.cairn(&["--devices", &devices, "pvs", "--json", "--vg", "vgnested"])?,
            "pv",
        )?;
        ensure!(
            pvs.len() == 1 && pvs[0]["pv_name"] == "/dev/vgall/cached",
            "vgnested PV: {pvs:?}"
        );
        g.sh(&format!(
            "vgchange -q -an {SCAN_LVS} vgnested && vgchange -q -an vgall"
        ))?;
        compare_all(g, &["vgall"], &format!("{},{},{}", b.dev, c.dev, d.dev))
    })();
    let _ = g.sh(&format!("vgchange -q -an {SCAN_LVS} vgnested; vgchange -q -an vgall; vgremove -q -ff vgnested vgall"));
    result
}

/// cairn writes PVs and a VG; lvm2's checkers accept them without a word,
/// and lvm2 reads what cairn wrote.
fn lvm2_accepts_what_cairn_writes(g: &Guest) -> TestResult {
    let (a, b, c) = (
        g.loop_disk("a", 128)?,
        g.loop_disk("b", 128)?,
        g.loop_disk("c", 64)?,
    );
    g.cairn(&["pv", "create", &a.dev, &b.dev, &c.dev])?;
    for d in [&a, &b, &c] {
        let out = g.output(&["pvck", &d.dev])?;
        ensure!(
            out.status.success() && out.stderr.is_empty(),
            "pvck {} complained",
            d.dev
        );
    }
    g.cairn(&["vg", "create", "vgc", &a.dev, &b.dev])?;
    g.cairn(&["vg", "extend", "vgc", &c.dev])?;
    for check in [
        "vgck vgc".to_owned(),
        format!("pvck {}", a.dev),
        "vgs vgc".into(),
        "pvs".into(),
    ] {
        let out = g.output(&["bash", "-c", &check])?;
        ensure!(out.status.success(), "`{check}` failed");
        ensure!(
            out.stderr.is_empty(),
            "`{check}` warned: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let devices = format!("{},{},{}", a.dev, b.dev, c.dev);
    compare_all(g, &["vgc"], &devices)?;
    // lvm2 can work with it: an LV, then cairn reads lvm2's change.
    g.sh("lvcreate -q -y -L 8M -n made_by_lvm2 vgc && vgchange -q -an vgc")?;
    compare_all(g, &["vgc"], &devices)?;
    g.sh("lvremove -q -y vgc/made_by_lvm2")?;
    g.cairn(&["vg", "remove", "vgc", "--yes"])?;
    let out = g.sh("pvs --reportformat json -o pv_name,vg_name")?;
    for d in [&a, &b, &c] {
        ensure!(
            out.contains(&format!("\"pv_name\":\"{}\", \"vg_name\":\"\"", d.dev)),
            "{} is not an orphan: {out}",
            d.dev
        );
    }
    g.cairn(&["pv", "remove", "--yes", &a.dev, &b.dev, &c.dev])?;
    let out = g.output(&["pvs", &a.dev])?;
    ensure!(!out.status.success(), "lvm2 still sees a PV on {}", a.dev);
    Ok(())
}

/// 60 commits by cairn wrap the circular buffer; lvm2 reads the newest.
fn sixty_commits_wrap_and_lvm2_reads_the_newest(g: &Guest) -> TestResult {
    let a = g.loop_disk("w", 64)?;
    g.cairn(&["pv", "create", &a.dev])?;
    g.cairn(&["vg", "create", "vgw", &a.dev])?;
    let long = "x".repeat(1500);
    // Slot 0's offset (in the mda header at 4096) after each commit.
    let slot0 = format!("od -An -t u8 -j {} -N 8 {}", 4096 + 40, a.dev);
    let mut offsets = Vec::new();
    for i in 0..60 {
        let tag = format!("t{i:02}_{long}");
        g.cairn(&["--devices", &a.dev, "vg", "change", "vgw", "--addtag", &tag])?;
        let offset = g.sh(&slot0)?.trim().parse::<u64>();
        offsets.push(offset.map_err(|e| format!("od: {e}"))?);
    }
    ensure!(
        offsets.windows(2).any(|w| w[1] < w[0]),
        "the buffer never wrapped: {offsets:?}"
    );
    let headers = g.sh(&format!("pvck --dump headers {}", a.dev))?;
    let newest = format!("mda_header_1.raw_locn[0].offset {}", offsets[59]);
    ensure!(
        headers.contains(&newest),
        "pvck disagrees on the newest copy ({newest}):\n{headers}"
    );
    let vg = rows(
        &g.sh("vgs --reportformat json -o vg_seqno,vg_tags vgw")?,
        "vg",
    )?;
    ensure!(
        vg[0]["vg_seqno"] == "61",
        "lvm2 reads seqno {}",
        vg[0]["vg_seqno"]
    );
    ensure!(
        vg[0]["vg_tags"]
            .as_str()
            .unwrap_or("")
            .matches(&long)
            .count()
            == 60,
        "lvm2 does not see all 60 tags"
    );
    g.sh("vgck vgw && vgremove -q -f vgw")?;
    Ok(())
}

/// cairn and lvm2 change one VG in turns: one seqno step per change, every change kept.
fn cairn_and_lvm2_take_turns(g: &Guest) -> TestResult {
    let a = g.loop_disk("t", 64)?;
    g.sh(&format!("pvcreate -q {0} && vgcreate -q vgt {0}", a.dev))?;
    for i in 0..10 {
        g.cairn(&[
            "--devices",
            &a.dev,
            "vg",
            "change",
            "vgt",
            "--addtag",
            &format!("cairn{i}"),
        ])?;
        g.sh(&format!("vgchange -q --addtag lvm{i} vgt"))?;
        let vg = rows(
            &g.sh("vgs --reportformat json -o vg_seqno,vg_tags vgt")?,
            "vg",
        )?;
        ensure!(
            vg[0]["vg_seqno"] == (3 + 2 * i).to_string().as_str(),
            "after round {i}: seqno {}",
            vg[0]["vg_seqno"]
        );
        let tags = vg[0]["vg_tags"].as_str().unwrap_or("").split(',').count();
        ensure!(tags == 2 * (i + 1), "after round {i}: {tags} tags");
    }
    compare_all(g, &["vgt"], &a.dev)?;
    g.sh("vgck vgt && vgremove -q -f vgt")?;
    Ok(())
}

/// lvm2 and cairn wait on the same lock files: while another process holds
/// /run/lock/lvm/V_<vg> (or P_global), neither writes.
fn lvm2_and_cairn_share_the_locks(g: &Guest) -> TestResult {
    let (a, b) = (g.loop_disk("l1", 64)?, g.loop_disk("l2", 64)?);
    g.cairn(&["pv", "create", &a.dev, &b.dev])?;
    g.cairn(&["vg", "create", "vgl", &a.dev])?;
    let held = |lock: &str, cmd: &str| -> Result<i32, String> {
        // flock(1) holds the lock for 4 s; the command gets 2 s.
        let script = format!(
            "flock -x /run/lock/lvm/{lock} -c 'sleep 4' & sleep 0.5; timeout 2 {cmd}; rc=$?; wait; exit $rc"
        );
        let out = g.output(&["bash", "-c", &script])?;
        Ok(out.status.code().unwrap_or(-1))
    };
    let cairn = lab::guest::CAIRN;
    for (lock, cmd) in [
        ("V_vgl", "vgchange -q --addtag by_lvm2 vgl".to_owned()),
        ("V_vgl", format!("{cairn} vg change vgl --addtag by_cairn")),
        ("P_global", format!("{cairn} vg extend vgl {}", b.dev)),
        ("P_global", format!("vgextend -q vgl {}", b.dev)),
    ] {
        ensure!(held(lock, &cmd)? == 124, "`{cmd}` did not wait for {lock}");
    }
    let vg = rows(
        &g.sh("vgs --reportformat json -o vg_seqno,vg_tags,pv_count vgl")?,
        "vg",
    )?;
    ensure!(
        vg[0]["vg_seqno"] == "1" && vg[0]["pv_count"] == "1",
        "a blocked command changed vgl: {vg:?}"
    );
    // Once free, both go through.
    g.sh("vgchange -q --addtag by_lvm2 vgl")?;
    g.cairn(&["vg", "change", "vgl", "--addtag", "by_cairn"])?;
    g.sh("vgck vgl && vgremove -q -f vgl")?;
    Ok(())
}

/// A PV on a DRBD device shows its label on the backing LV too: cairn
/// reports it once, on /dev/drbdN, as lvm2 with the seed's filter does.
fn drbd_backed_pv_is_seen_once_on_top(g: &Guest) -> TestResult {
    let disk = g.loop_disk("drbd-back", 256)?;
    let res = format!(
        "resource rlab {{\n  on {host} {{\n    device /dev/drbd5;\n    disk {dev};\n    address 127.0.0.1:7795;\n    meta-disk internal;\n  }}\n}}\n",
        host = g.hostname(),
        dev = disk.dev
    );
    std::fs::write("/etc/drbd.d/rlab.res", res).map_err(|e| e.to_string())?;
    // lvm2 needs the seed's kind of filter to stay off the backing device.
    let filter = format!(
        "--config 'devices {{ filter = [ \"r|^{}$|\" ] }}'",
        disk.dev
    );
    let result = (|| {
        g.sh("drbdadm create-md --force rlab >/dev/null 2>&1 || drbdadm create-md rlab")?;
        let _ = g.sh("drbdadm up rlab");
        g.sh("drbdadm primary --force rlab")?;
        g.sh(&format!(
            "pvcreate -q {filter} /dev/drbd5 && vgcreate -q {filter} vgd /dev/drbd5"
        ))?;
        let devices = format!("{},/dev/drbd5", disk.dev);
        let out = g.cairn(&["--devices", &devices, "pvs", "--json"])?;
        let pvs = rows(&out, "pv")?;
        ensure!(pvs.len() == 1, "cairn shows {} PVs: {out}", pvs.len());
        ensure!(
            pvs[0]["pv_name"] == "/dev/drbd5",
            "cairn picked {} instead of the DRBD device",
            pvs[0]["pv_name"]
        );
        // And with every block device scanned.
        let all = rows(&g.cairn(&["pvs", "--json"])?, "pv")?;
        let drbd: Vec<&Value> = all.iter().filter(|p| p["vg_name"] == "vgd").collect();
        ensure!(
            drbd.len() == 1 && drbd[0]["pv_name"] == "/dev/drbd5",
            "full scan: {all:?}"
        );
        Ok(())
    })();
    let _ = g.sh(&format!(
        "vgremove -q -f {filter} vgd; drbdadm down rlab; rm -f /etc/drbd.d/rlab.res"
    ));
    result
}

/// Every kind of signature a guest tool makes: blkid names it, and `cairn
/// pv create` refuses the device naming the same kind, with not one byte
/// changed. md 0.90/1.0 and DRBD keep theirs at the end of the device.
/// Then the other refusals (mounted, a regular file) and --force.
fn pv_create_refuses_every_signature_blkid_knows(g: &Guest) -> TestResult {
    g.sh("mkdir -p /tmp/sigsrc && echo cairn > /tmp/sigsrc/f
        mksquashfs /tmp/sigsrc /tmp/sig.sqfs -noappend -quiet >/dev/null
        xorriso -outdev /tmp/sig.iso -map /tmp/sigsrc / >/dev/null 2>&1")?;
    let md = |v: &str| {
        format!(
            "mdadm --create /dev/md9 --run --quiet --level=1 --raid-devices=2 --force \
             --metadata={v} $DEV missing && mdadm --stop /dev/md9"
        )
    };
    // (blkid's TYPE or PTTYPE, disk MiB, how to make it on $DEV)
    let kinds: Vec<(&str, u64, String)> = vec![
        ("ext4", 64, "mkfs.ext4 -q -F $DEV".into()),
        ("xfs", 320, "mkfs.xfs -q -f $DEV".into()),
        ("btrfs", 160, "mkfs.btrfs -q -f $DEV".into()),
        ("f2fs", 64, "mkfs.f2fs -q -f $DEV".into()),
        ("vfat", 64, "mkfs.vfat $DEV".into()),
        ("swap", 64, "mkswap $DEV".into()),
        ("squashfs", 64, "dd if=/tmp/sig.sqfs of=$DEV conv=notrunc status=none".into()),
        ("iso9660", 64, "dd if=/tmp/sig.iso of=$DEV conv=notrunc status=none".into()),
        (
            "crypto_LUKS",
            64,
            "echo -n pw | cryptsetup luksFormat -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 $DEV -"
                .into(),
        ),
        ("bcache", 64, "make-bcache -B $DEV".into()),
        ("linux_raid_member", 64, md("0.90")),
        ("linux_raid_member", 64, md("1.0")),
        ("linux_raid_member", 64, md("1.2")),
        ("drbd", 64, "drbdmeta --force 99 v08 $DEV internal create-md".into()),
        ("drbd", 64, "drbdmeta --force 99 v09 $DEV internal create-md 1".into()),
        (
            "ceph_bluestore",
            64,
            "printf 'bluestore block device\\n' | dd of=$DEV conv=notrunc status=none".into(),
        ),
        ("gpt", 64, "echo 'label: gpt' | sfdisk -q $DEV".into()),
        ("dos", 64, "echo 'label: dos' | sfdisk -q $DEV".into()),
    ];
    let mut named = Vec::new();
    for (i, (kind, mib, make)) in kinds.iter().enumerate() {
        let d = g.loop_disk(&format!("sig{i}"), *mib)?;
        g.sh(&format!("DEV={}; {make} >/dev/null", d.dev))?;
        let blkid = g.sh(&format!(
            "blkid -p -o export {} | grep -E '^(TYPE|PTTYPE)=' || true",
            d.dev
        ))?;
        ensure!(
            blkid
                .lines()
                .any(|l| l.split_once('=').map(|x| x.1) == Some(kind)),
            "{make}: blkid -p says {blkid:?}, not {kind}"
        );
        let before = g.sh(&format!("sha256sum < {}", d.dev))?;
        let out = g.output(&[lab::guest::CAIRN, "pv", "create", &d.dev])?;
        let err = String::from_utf8_lossy(&out.stderr);
        let after = g.sh(&format!("sha256sum < {}", d.dev))?;
        ensure!(
            !out.status.success() && err.contains(&format!("{kind} (")),
            "{make}: cairn pv create: {err}"
        );
        ensure!(
            before == after,
            "{make}: the refused pv create changed the device"
        );
        named.push(*kind);
    }
    eprintln!("named as blkid does: {}", named.join(" "));

    // Mounted: refused even forced (the exclusive open fails).
    let d = g.loop_disk("sigmnt", 64)?;
    g.sh(&format!(
        "mkfs.ext4 -q -F {0} && mkdir -p /tmp/sigmnt && mount {0} /tmp/sigmnt",
        d.dev
    ))?;
    let out = g.output(&[lab::guest::CAIRN, "pv", "create", "--force", &d.dev])?;
    g.sh("umount /tmp/sigmnt")?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("is in use"),
        "pv create on a mounted device: {err}"
    );
    g.run(&["e2fsck", "-fn", &d.dev])?;
    // Forced, unmounted: the signature is wiped, lvm2 sees a PV and blkid
    // nothing else.
    g.cairn(&["pv", "create", "--force", &d.dev])?;
    let blkid = g.sh(&format!("blkid -p -o export {}", d.dev))?;
    ensure!(
        blkid.contains("TYPE=LVM2_member") && !blkid.contains("ext4"),
        "after pv create --force: {blkid}"
    );
    g.run(&["pvs", &d.dev])?;
    g.run(&["pvremove", "-q", &d.dev])?;
    // A regular file: refused unless asked for.
    g.sh("truncate -s 64M /tmp/sig-file.img")?;
    let out = g.output(&[lab::guest::CAIRN, "pv", "create", "/tmp/sig-file.img"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("not a block device"),
        "pv create on a file: {err}"
    );
    ensure!(
        g.sh("cmp -s /tmp/sig-file.img /dev/zero -n 67108864 && echo zero")?
            .trim()
            == "zero",
        "the refused pv create wrote to the file"
    );
    g.cairn(&["pv", "create", "--allow-file", "/tmp/sig-file.img"])?;
    g.sh("rm -f /tmp/sig-file.img")?;
    Ok(())
}

/// A crafted metadata-area header on one PV (signed as lvm2 signs it, so
/// only its sizes are wrong: an area of 2^63 bytes with the committed copy a
/// TiB into it), written with dd. The full scan (`cairn vgs`, every block
/// device) still lists the other VG and names the bad device; before, it
/// sized a buffer from the header and aborted. lvm2's `vgs` is run on the
/// same devices and its output kept in the log as the oracle's behaviour.
fn crafted_mda_header_leaves_the_scan_of_other_vgs(g: &Guest) -> TestResult {
    use cairn::meta::mda::MdaHeader;
    let (disk_a, disk_b) = (g.loop_disk("good", 64)?, g.loop_disk("crafted", 64)?);
    let (a, b) = (&disk_a.dev, &disk_b.dev);
    let result = (|| {
        g.sh(&format!(
            "pvcreate -q {a} {b} && vgcreate -q vmgood {a} && vgcreate -q vmbad {b} && \
             lvcreate -q -y -L 8M -n keep vmgood"
        ))?;
        let mut sector = vec![0u8; 512];
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut dev = std::fs::File::open(b).map_err(|e| e.to_string())?;
            dev.seek(SeekFrom::Start(4096)).map_err(|e| e.to_string())?;
            dev.read_exact(&mut sector).map_err(|e| e.to_string())?;
        }
        let mut header = MdaHeader::decode(&sector, 4096).map_err(|e| e.to_string())?;
        header.size = 1 << 63;
        header.raw_locns[0].offset = 1 << 40;
        let crafted = std::env::temp_dir().join("crafted-mda-header");
        std::fs::write(&crafted, header.encode()).map_err(|e| e.to_string())?;
        g.sh(&format!(
            "dd if={} of={b} bs=512 seek=8 count=1 conv=notrunc,fsync oflag=direct status=none",
            crafted.display()
        ))?;
        let out = g.output(&[lab::guest::CAIRN, "vgs", "--json"])?;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        ensure!(
            out.status.success(),
            "cairn vgs failed ({}): {stdout}{stderr}",
            out.status
        );
        let vgs = rows(&stdout, "vg")?;
        ensure!(
            vgs.iter().any(|v| v["vg_name"] == "vmgood")
                && !vgs.iter().any(|v| v["vg_name"] == "vmbad"),
            "cairn vgs: {stdout}"
        );
        ensure!(
            stderr.contains(&format!("{b}: metadata area at 4096: "))
                && stderr.contains("header says the area is 9223372036854775808 bytes"),
            "cairn does not name the crafted device: {stderr}"
        );
        // The same with the device named: the VG on it is unreadable, the
        // command says why and fails, as for any damaged PV.
        let named = g.output(&[lab::guest::CAIRN, "--devices", b, "vgs", "vmbad"])?;
        ensure!(
            !named.status.success(),
            "cairn vgs vmbad on the crafted device succeeded"
        );
        // lvm2 on the same devices: its behaviour, for the record (log).
        let lvm2 = g.output(&["vgs", "-o", "vg_name", "--noheadings"])?;
        eprintln!(
            "lvm2 vgs with the crafted header: {} / stdout {:?} / stderr {:?}",
            lvm2.status,
            String::from_utf8_lossy(&lvm2.stdout),
            String::from_utf8_lossy(&lvm2.stderr)
        );
        ensure!(
            String::from_utf8_lossy(&lvm2.stdout).contains("vmgood"),
            "lvm2 lost vmgood too?"
        );
        Ok(())
    })();
    let _ = g.sh(&format!(
        "vgremove -q -f vmgood; dd if=/dev/zero of={b} bs=1M count=2 conv=fsync status=none"
    ));
    result
}

fn main() {
    lab::main(Group {
        name: "vm_meta",
        nodes: 1,
        mem_mib: 2048,
        timeout: Duration::from_secs(600),
        tests: vec![
            VmTest {
                name: "reports_equal_lvm2s",
                run: reports_equal_lvm2s,
            },
            VmTest {
                name: "lvm2_accepts_what_cairn_writes",
                run: lvm2_accepts_what_cairn_writes,
            },
            VmTest {
                name: "sixty_commits_wrap_and_lvm2_reads_the_newest",
                run: sixty_commits_wrap_and_lvm2_reads_the_newest,
            },
            VmTest {
                name: "cairn_and_lvm2_take_turns",
                run: cairn_and_lvm2_take_turns,
            },
            VmTest {
                name: "lvm2_and_cairn_share_the_locks",
                run: lvm2_and_cairn_share_the_locks,
            },
            VmTest {
                name: "pv_create_refuses_every_signature_blkid_knows",
                run: pv_create_refuses_every_signature_blkid_knows,
            },
            VmTest {
                name: "drbd_backed_pv_is_seen_once_on_top",
                run: drbd_backed_pv_is_seen_once_on_top,
            },
            VmTest {
                name: "crafted_mda_header_leaves_the_scan_of_other_vgs",
                run: crafted_mda_header_leaves_the_scan_of_other_vgs,
            },
        ],
        stream_log: false,
        boots: 1,
        disks: &[],
    })
}
