//! Who holds a lease: the process, named `host/boot id/pid`, and whether a holder is known to be
//! gone. Work that must run once (a sync run, an action's run) holds a lease row in the
//! database under this name; a lease whose process died can be taken over before it lapses.

/// This process, as a lease names it: `host/boot id/pid`.
pub fn holder_id() -> String {
    format!("{}/{}/{}", host_name(), boot_id(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The host, boot id and pid a holder names (`host/boot id/pid`); `None` for a name of
/// another shape.
fn parts(holder: &str) -> Option<(&str, &str, u32)> {
    let mut parts = holder.rsplitn(3, '/');
    let (Some(pid), Some(boot), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    Some((host, boot, pid.parse().ok()?))
}

/// The host and pid a holder names (`host/boot id/pid`), for messages; `None` for a name of
/// another shape.
pub fn host_and_pid(holder: &str) -> Option<(&str, u32)> {
    parts(holder).map(|(host, _, pid)| (host, pid))
}

/// Whether the process named by a lease's holder is known to be gone: it ran on this host since
/// its last boot, and its pid no longer exists. Anything else (another host, no `/proc`) is
/// presumed alive until its lease lapses.
pub fn holder_is_dead(holder: &str) -> bool {
    let Some((host, boot, pid)) = parts(holder) else {
        return false;
    };
    if host != host_name() || boot != boot_id() || boot == "unknown" {
        return false;
    }
    pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_dead_only_when_its_pid_is_gone_on_this_host() {
        let me = holder_id();
        assert!(!holder_is_dead(&me), "this process is alive");
        let ours = format!("{}/{}", host_name(), boot_id());
        if boot_id() != "unknown" {
            // Pid numbers wrap far below u32::MAX.
            assert!(holder_is_dead(&format!("{ours}/4000000000")));
            assert!(!holder_is_dead(&format!("{ours}/1")), "pid 1 lives");
        }
        assert!(!holder_is_dead("elsewhere/boot/4000000000"));
        assert!(!holder_is_dead("garbage"));
        assert_eq!(host_and_pid("web-1/0f3c/4242"), Some(("web-1", 4242)));
        assert_eq!(host_and_pid("garbage"), None);
    }
}
