//! The watcher's manners on a serving host: idle I/O priority, so its reads wait for
//! everyone else's, and a low CPU priority (nice 10), so its hashing yields to the server.

use std::io;

/// `IOPRIO_WHO_PROCESS` and `IOPRIO_CLASS_IDLE` of linux/ioprio.h.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
/// The niceness the watcher runs at, unless it already runs nicer.
pub const NICENESS: libc::c_int = 10;

/// Puts the calling thread, and every thread it starts afterwards, at idle I/O priority
/// and at least [`NICENESS`]. Call it before any other thread is started.
pub fn lower_priority() -> io::Result<()> {
    // SAFETY: plain system calls on the calling thread (0), passing no memory.
    let set = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    // getpriority may return -1 as a value: errno tells an error apart.
    unsafe { *libc::__errno_location() = 0 };
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if current == -1 && io::Error::last_os_error().raw_os_error() != Some(0) {
        return Err(io::Error::last_os_error());
    }
    if current < NICENESS && unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
