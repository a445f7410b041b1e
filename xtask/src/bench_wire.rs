//! A network link of a fixed rate, for the registry bench: a TCP relay in front of the
//! loopback registry whose socket to the client the kernel paces to `bytes_per_second`, as a
//! real link would carry the registry's answers. Requests pass unpaced. The relayed bytes
//! move through a pipe with `splice(2)`, never through user space, and nothing here sleeps
//! or wakes per slice, so the relay adds little CPU to a machine the registry and the
//! client already share.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes moved per `splice` call.
const SLICE_BYTES: usize = 256 << 10;

/// Starts relaying `127.0.0.1:<returned port>` to `127.0.0.1:upstream`, each connection on
/// its own threads, until the process ends.
pub fn start(upstream: u16, bytes_per_second: u32) -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("wire: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            std::thread::spawn(move || relay(client, server, bytes_per_second));
        }
    });
    Ok(port)
}

fn relay(client: TcpStream, server: TcpStream, bytes_per_second: u32) {
    let (Ok(mut requests), Ok(mut upstream)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let forward = std::thread::spawn(move || {
        let _ = io::copy(&mut requests, &mut upstream);
        let _ = upstream.shutdown(Shutdown::Write);
    });
    if let Err(e) = paced(&server, &client, bytes_per_second) {
        eprintln!("the bench's paced link failed: {e}");
    }
    let _ = client.shutdown(Shutdown::Write);
    let _ = forward.join();
}

/// Moves everything `from` sends to `to`, which the kernel paces to `bytes_per_second`
/// (`SO_MAX_PACING_RATE`: TCP paces a socket itself when no qdisc does).
fn paced(from: &TcpStream, to: &TcpStream, bytes_per_second: u32) -> io::Result<()> {
    let set = unsafe {
        libc::setsockopt(
            to.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MAX_PACING_RATE,
            (&bytes_per_second as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    let (pipe_out, pipe_in) = pipe()?;
    loop {
        let moved = splice(from.as_raw_fd(), pipe_in.as_raw_fd(), SLICE_BYTES)?;
        if moved == 0 {
            return Ok(());
        }
        let mut left = moved;
        while left > 0 {
            left -= splice(pipe_out.as_raw_fd(), to.as_raw_fd(), left)?;
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The pipe holds a whole slice, so one splice in moves what one splice out takes.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, SLICE_BYTES as libc::c_int) };
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn splice(from: RawFd, to: RawFd, bytes: usize) -> io::Result<usize> {
    loop {
        let moved = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                bytes,
                libc::SPLICE_F_MOVE,
            )
        };
        if moved >= 0 {
            return Ok(moved as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
