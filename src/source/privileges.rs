//! Live capture drops root once the capture and its outputs are open, like tcpdump's `-Z`:
//! parsing what the wire sends is done as an unprivileged user (`nobody` unless `--user`
//! names another; `--no-drop-privileges` keeps root).
//!
//! As root, in this order, before any other thread is started (the bounding and ambient sets
//! are per thread, and threads inherit them):
//!
//! 1. the ambient capability set is cleared, and every capability is dropped from the bounding
//!    set (so nothing can come back through executing a program with file capabilities);
//! 2. the supplementary groups become the user's own (`getgrouplist`), else none;
//! 3. the real, effective and saved group ids become the user's group (`setresgid`);
//! 4. the real, effective and saved user ids become the user's (`setresuid`): the kernel then
//!    clears the permitted, effective and ambient capability sets, since no uid is 0 any more.
//!
//! Then it is checked: no user id is 0 and the permitted and effective sets are empty, or the
//! run stops (exit 2). Not root, exflow keeps its user, and drops any capability it was given
//! (`setcap cap_net_raw,cap_net_admin=eip`), which the capture no longer needs once open.
//!
//! The system calls go through `nix` (user and group ids) and `caps` (capability sets):
//! exflow itself has no unsafe code.

use crate::error::Error;
use caps::CapSet;
use nix::unistd::{Gid, Uid, User};

/// The user a live capture runs as once the capture is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// What [`drop_privileges`] did, for the banner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// `--no-drop-privileges` as root: uid 0 and every capability kept.
    KeptRoot,
    /// Now running as this user, with no capabilities. `bounding`: whether the bounding set
    /// could be emptied too (it cannot without CAP_SETPCAP, in some containers).
    User { target: Target, bounding: bool },
    /// Not root: the user unchanged; `capabilities` it held and dropped.
    NotRoot { uid: u32, capabilities: usize },
}

/// The default user (`--user`).
pub const DEFAULT_USER: &str = "nobody";

/// Whether this process runs as root (any of its user ids is 0).
pub fn is_root() -> bool {
    match nix::unistd::getresuid() {
        Ok(r) => r.real.is_root() || r.effective.is_root() || r.saved.is_root(),
        Err(_) => nix::unistd::geteuid().is_root(),
    }
}

/// Looks a user up by name (or a number), before anything is opened: an unknown user, or one
/// whose uid is 0, is a usage error.
pub fn lookup(name: &str) -> Result<Target, Error> {
    let found = match name.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(name),
    }
    .map_err(|e| Error::Usage(format!("--user {name}: cannot look the user up: {e}")))?;
    let Some(user) = found else {
        return Err(Error::Usage(format!(
            "--user {name}: no such user; name an unprivileged user for the capture to run as \
             once the interface is open, or keep root with --no-drop-privileges"
        )));
    };
    if user.uid.is_root() {
        return Err(Error::Usage(format!(
            "--user {name}: that is uid 0; to keep root, say --no-drop-privileges"
        )));
    }
    Ok(Target {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// Drops to `target` if this process is root (`None`: keep root), as the module describes.
/// Call it on the only thread there is.
pub fn drop_privileges(target: Option<&Target>) -> Result<Dropped, Error> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Usage(format!(
            "cannot drop root privileges ({what}: {e}); the capture was not started (keep root \
             with --no-drop-privileges)"
        ))
    };
    if !is_root() {
        let held = caps::read(None, CapSet::Permitted).map_or(0, |c| c.len());
        if held > 0 {
            // Dropping capabilities needs none: this cannot fail for want of permission.
            for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
                caps::clear(None, set).map_err(|e| fail("clearing capabilities", &e))?;
            }
        }
        if caps::runtime::ambient_set_supported().is_ok() {
            let _ = caps::clear(None, CapSet::Ambient);
        }
        return Ok(Dropped::NotRoot {
            uid: nix::unistd::getuid().as_raw(),
            capabilities: held,
        });
    }
    let Some(target) = target else {
        return Ok(Dropped::KeptRoot);
    };
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient).map_err(|e| fail("ambient set", &e))?;
    }
    // Without CAP_SETPCAP (some containers) the bounding set stays; the other sets are still
    // emptied by the uid change below, which is what the check at the end requires.
    let bounding = caps::clear(None, CapSet::Bounding).is_ok();
    let uid = Uid::from_raw(target.uid);
    let gid = Gid::from_raw(target.gid);
    let groups = std::ffi::CString::new(target.name.as_str())
        .ok()
        .and_then(|n| nix::unistd::getgrouplist(&n, gid).ok())
        .unwrap_or_default();
    nix::unistd::setgroups(&groups).map_err(|e| fail("setgroups", &e))?;
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| fail("setresgid", &e))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| fail("setresuid", &e))?;
    verify(target)?;
    Ok(Dropped::User {
        target: target.clone(),
        bounding,
    })
}

/// Checks that the drop took: every user and group id the target's, no capability left.
fn verify(target: &Target) -> Result<(), Error> {
    let bad = |what: String| {
        Error::Usage(format!(
            "root privileges were not dropped: {what}; the capture was not started"
        ))
    };
    let u = nix::unistd::getresuid().map_err(|e| bad(format!("getresuid: {e}")))?;
    if [u.real, u.effective, u.saved]
        .iter()
        .any(|id| id.as_raw() != target.uid)
    {
        return Err(bad(format!(
            "user ids {}/{}/{}",
            u.real, u.effective, u.saved
        )));
    }
    let g = nix::unistd::getresgid().map_err(|e| bad(format!("getresgid: {e}")))?;
    if [g.real, g.effective, g.saved]
        .iter()
        .any(|id| id.as_raw() != target.gid)
    {
        return Err(bad(format!(
            "group ids {}/{}/{}",
            g.real, g.effective, g.saved
        )));
    }
    for set in [CapSet::Permitted, CapSet::Effective] {
        let held = caps::read(None, set).map_err(|e| bad(format!("capget: {e}")))?;
        if !held.is_empty() {
            return Err(bad(format!("{} capabilities still {set:?}", held.len())));
        }
    }
    Ok(())
}
