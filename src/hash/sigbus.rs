//! Survives a mapped file shrinking under us.
//!
//! Reading a page of a memory map that lies beyond the end of the (since truncated) file
//! raises SIGBUS, which kills the process by default. While a window is being hashed it is
//! registered here; a SIGBUS inside a registered window replaces the rest of that window with
//! anonymous zero pages (so the faulting read resumes and finishes), and flags the window as
//! faulted so the reader reports the file as `unstable`. A SIGBUS anywhere else is passed on
//! to the handler that was installed before ours (Rust's runtime, or the default action).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;

const SLOT_COUNT: usize = 1024;
const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const ACTIVE: u8 = 2;

struct Slot {
    state: AtomicU8,
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // used only to initialise the array below
const EMPTY_SLOT: Slot = Slot {
    state: AtomicU8::new(FREE),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static SLOTS: [Slot; SLOT_COUNT] = [EMPTY_SLOT; SLOT_COUNT];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
static mut PREVIOUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();

/// A registered window; drop it (or call [`Watch::release`]) before unmapping.
pub struct Watch {
    slot: Option<&'static Slot>,
}

impl Watch {
    /// Ends the watch and says whether a SIGBUS hit the window while it was watched.
    pub fn release(mut self) -> bool {
        self.take()
    }

    fn take(&mut self) -> bool {
        match self.slot.take() {
            Some(slot) => {
                let faulted = slot.faulted.swap(false, Ordering::AcqRel);
                slot.state.store(FREE, Ordering::Release);
                faulted
            }
            None => false,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.take();
    }
}

/// Registers `[ptr, ptr + len)` as a window whose SIGBUS faults are recoverable.
///
/// When every slot is taken (more concurrent windows than [`SLOT_COUNT`]), the watch is
/// empty and a fault in the window is not recovered; callers keep far fewer windows open.
pub fn watch(ptr: *const u8, len: usize) -> Watch {
    install();
    for slot in SLOTS.iter() {
        if slot
            .state
            .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.faulted.store(false, Ordering::Relaxed);
            slot.start.store(ptr as usize, Ordering::Relaxed);
            slot.end.store(ptr as usize + len, Ordering::Relaxed);
            slot.state.store(ACTIVE, Ordering::Release);
            return Watch { slot: Some(slot) };
        }
    }
    Watch { slot: None }
}

fn install() {
    INSTALL.call_once(|| unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Relaxed);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        let previous = std::ptr::addr_of_mut!(PREVIOUS) as *mut libc::sigaction;
        libc::sigaction(libc::SIGBUS, &action, previous);
    });
}

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // Only async-signal-safe work here: atomics and one mmap(2) call.
    let address = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    for slot in SLOTS.iter() {
        if slot.state.load(Ordering::Acquire) != ACTIVE {
            continue;
        }
        let start = slot.start.load(Ordering::Relaxed);
        let end = slot.end.load(Ordering::Relaxed);
        if address < start || address >= end {
            continue;
        }
        let from = address & !(page - 1);
        let to = (end + page - 1) & !(page - 1);
        let replaced = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                to - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if replaced != libc::MAP_FAILED {
            slot.faulted.store(true, Ordering::Release);
            return;
        }
    }
    pass_on(signal, info, context);
}

/// Hands a fault that is not ours to the previously installed handler.
fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    unsafe {
        let previous = &*(std::ptr::addr_of!(PREVIOUS) as *const libc::sigaction);
        let handler = previous.sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            // Restore the default action; returning re-executes the faulting access,
            // which now terminates the process with SIGBUS as it would have without us.
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
        } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(signal);
        }
    }
}
