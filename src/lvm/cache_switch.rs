//! The last step of a cache detach: the cached LV's device goes from its
//! cache table to the linear table of its origin's extents, in lvm2's
//! order (load, suspend, commit, resume).
//!
//! - The linear table is loaded into the inactive slot and the LV
//!   suspended before the metadata says the LV is linear and the pool
//!   unused: until the commit, the pool is allocated, and nothing can
//!   plan its extents or devices while the kernel still maps them. A crash
//!   after the commit leaves the LV suspended with the linear table
//!   inactive, which the next activation swaps in.
//! - dm-cache writes nothing back on suspend, and the cleaner's "no dirty
//!   block" was read while the LV was live: a write between that reading
//!   and the suspend may have dirtied a block, which the linear table would
//!   drop. So the dirty count is read again once the LV is suspended
//!   (nothing writes any more); a dirty block backs the switch out (the
//!   linear table cleared, the cache resumed) and the cleaner is waited
//!   for again.

/// What a switch does to the kernel and the metadata; the loop that orders
/// it is [`switch_when_clean`].
pub trait Switch {
    type Error;
    /// Returns once the live cache reports no dirty block (the cleaner
    /// policy in place where it has to be).
    fn wait_clean(&mut self) -> Result<(), Self::Error>;
    /// Loads the linear table into the inactive slot, then suspends the LV.
    fn load_and_suspend(&mut self) -> Result<(), Self::Error>;
    /// The dirty blocks the suspended cache reports (0 when no cache
    /// reports any).
    fn dirty(&mut self) -> Result<u64, Self::Error>;
    /// Clears the linear table and resumes the LV with its cache.
    fn back_out(&mut self) -> Result<(), Self::Error>;
    /// Commits the metadata that says the LV is linear; an error means
    /// nothing was committed.
    fn commit(&mut self) -> Result<(), Self::Error>;
    /// Resumes the LV (the linear table goes live) and removes the cache's
    /// layers.
    fn resume(&mut self) -> Result<(), Self::Error>;
    /// Tells the user of a round backed out.
    fn tell(&mut self, message: String);
}

/// Runs the switch: waits for a clean cache, loads and suspends, and
/// commits only when the suspended cache holds no dirty block; otherwise
/// backs out and waits again.
pub fn switch_when_clean<S: Switch>(s: &mut S) -> Result<(), S::Error> {
    loop {
        s.wait_clean()?;
        s.load_and_suspend()?;
        let dirty = match s.dirty() {
            Ok(n) => n,
            Err(e) => {
                s.back_out()?;
                return Err(e);
            }
        };
        if dirty > 0 {
            s.tell(format!(
                "{dirty} block(s) were written to the cache after its flush: resumed it to write \
                 them back, then again."
            ));
            s.back_out()?;
            continue;
        }
        if let Err(e) = s.commit() {
            s.back_out()?;
            return Err(e);
        }
        crate::failpoint::hit("uncache-after-commit");
        return s.resume();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache whose dirty count, read after each suspend, comes from a
    /// script; it records the calls and checks their order.
    struct Fake {
        dirty_after_suspend: Vec<u64>,
        commit_fails: bool,
        calls: Vec<&'static str>,
        heard: Vec<String>,
        suspended: bool,
        committed: bool,
    }

    impl Switch for Fake {
        type Error = String;
        fn wait_clean(&mut self) -> Result<(), String> {
            assert!(
                !self.suspended,
                "waits for the cleaner on a suspended cache"
            );
            self.calls.push("wait");
            Ok(())
        }
        fn load_and_suspend(&mut self) -> Result<(), String> {
            self.suspended = true;
            self.calls.push("load+suspend");
            Ok(())
        }
        fn dirty(&mut self) -> Result<u64, String> {
            assert!(self.suspended, "dirty count read while writes may come");
            Ok(self.dirty_after_suspend.remove(0))
        }
        fn back_out(&mut self) -> Result<(), String> {
            self.suspended = false;
            self.calls.push("clear+resume");
            Ok(())
        }
        fn commit(&mut self) -> Result<(), String> {
            assert!(self.suspended, "committed while the cache is live");
            if self.commit_fails {
                return Err("no commit".into());
            }
            self.committed = true;
            self.calls.push("commit");
            Ok(())
        }
        fn resume(&mut self) -> Result<(), String> {
            assert!(self.committed, "linear table live before the commit");
            self.suspended = false;
            self.calls.push("resume");
            Ok(())
        }
        fn tell(&mut self, message: String) {
            self.heard.push(message);
        }
    }

    fn fake(dirty: &[u64]) -> Fake {
        Fake {
            dirty_after_suspend: dirty.to_vec(),
            commit_fails: false,
            calls: Vec::new(),
            heard: Vec::new(),
            suspended: false,
            committed: false,
        }
    }

    #[test]
    fn a_clean_cache_switches_in_lvm2s_order() {
        let mut f = fake(&[0]);
        switch_when_clean(&mut f).unwrap();
        assert_eq!(f.calls, ["wait", "load+suspend", "commit", "resume"]);
    }

    #[test]
    fn a_block_dirtied_before_the_suspend_sends_the_switch_back() {
        let mut f = fake(&[3, 1, 0]);
        switch_when_clean(&mut f).unwrap();
        assert_eq!(
            f.calls,
            [
                "wait",
                "load+suspend",
                "clear+resume",
                "wait",
                "load+suspend",
                "clear+resume",
                "wait",
                "load+suspend",
                "commit",
                "resume"
            ]
        );
        assert!(f.heard[0].starts_with("3 block(s)"), "{:?}", f.heard);
        assert!(f.dirty_after_suspend.is_empty());
    }

    #[test]
    fn a_failed_commit_leaves_the_cache_live() {
        let mut f = fake(&[0]);
        f.commit_fails = true;
        assert_eq!(switch_when_clean(&mut f).unwrap_err(), "no commit");
        assert_eq!(f.calls, ["wait", "load+suspend", "clear+resume"]);
        assert!(!f.suspended);
    }
}
