//! Sending an IPC descriptor over a Unix domain socket, with the file descriptor of the memory
//! pool it needs (if any) as `SCM_RIGHTS` ancillary data: the common channel between two
//! processes, so that applications need not write the fd passing themselves.

use super::ipc::DESCRIPTOR_BYTES;
use crate::error::{Error, Result};
use std::mem::size_of;

/// Bytes of ancillary buffer for one file descriptor (`CMSG_SPACE(sizeof(int))`, rounded up).
const CONTROL_BYTES: usize = 64;

fn os_error(what: &str) -> Error {
    Error::invalid_argument(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Sends the descriptor's bytes on `socket`, with `fd` attached when given (not closed here).
pub(crate) fn send(socket: i32, bytes: &[u8; DESCRIPTOR_BYTES], fd: Option<i32>) -> Result<()> {
    let mut control = [0u64; CONTROL_BYTES / 8];
    let mut sent = 0;
    while sent < DESCRIPTOR_BYTES {
        let mut iov = libc::iovec {
            iov_base: bytes[sent..].as_ptr() as *mut libc::c_void,
            iov_len: DESCRIPTOR_BYTES - sent,
        };
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        if let (Some(fd), 0) = (fd, sent) {
            // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
            let (space, length) = unsafe {
                (libc::CMSG_SPACE(size_of::<i32>() as u32), libc::CMSG_LEN(size_of::<i32>() as u32))
            };
            message.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            message.msg_controllen = space as usize;
            // SAFETY: the control buffer holds one header and an int (space ≤ CONTROL_BYTES).
            unsafe {
                let header = libc::CMSG_FIRSTHDR(&message);
                (*header).cmsg_level = libc::SOL_SOCKET;
                (*header).cmsg_type = libc::SCM_RIGHTS;
                (*header).cmsg_len = length as usize;
                std::ptr::write_unaligned(libc::CMSG_DATA(header) as *mut i32, fd);
            }
        }
        // SAFETY: a valid message; the kernel checks the socket.
        let n = unsafe { libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(os_error("sending the IPC descriptor (sendmsg)"));
        }
        sent += n as usize;
    }
    Ok(())
}

/// Receives one descriptor's bytes from `socket`, with the file descriptor attached to them, if
/// any (the caller owns it).
pub(crate) fn receive(socket: i32) -> Result<([u8; DESCRIPTOR_BYTES], Option<i32>)> {
    let mut bytes = [0u8; DESCRIPTOR_BYTES];
    let mut fd = None;
    let mut received = 0;
    while received < DESCRIPTOR_BYTES {
        let mut control = [0u64; CONTROL_BYTES / 8];
        let mut iov = libc::iovec {
            iov_base: bytes[received..].as_mut_ptr() as *mut libc::c_void,
            iov_len: DESCRIPTOR_BYTES - received,
        };
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        message.msg_controllen = CONTROL_BYTES;
        // SAFETY: a valid message with writable buffers; the kernel checks the socket.
        let n = unsafe { libc::recvmsg(socket, &mut message, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            close_received(fd);
            return Err(os_error("receiving an IPC descriptor (recvmsg)"));
        }
        // SAFETY: the kernel filled the control buffer; walk its headers.
        unsafe {
            let mut header = libc::CMSG_FIRSTHDR(&message);
            while !header.is_null() {
                if (*header).cmsg_level == libc::SOL_SOCKET
                    && (*header).cmsg_type == libc::SCM_RIGHTS
                {
                    let count =
                        ((*header).cmsg_len - libc::CMSG_LEN(0) as usize) / size_of::<i32>();
                    let data = libc::CMSG_DATA(header) as *const i32;
                    for i in 0..count {
                        let received_fd = std::ptr::read_unaligned(data.add(i));
                        match fd {
                            None => fd = Some(received_fd),
                            Some(_) => {
                                libc::close(received_fd); // one is expected; more are closed
                            }
                        }
                    }
                }
                header = libc::CMSG_NXTHDR(&message, header);
            }
        }
        if n == 0 {
            close_received(fd);
            return Err(Error::invalid_argument(format!(
                "the socket was closed after {received} of the descriptor's {DESCRIPTOR_BYTES} bytes"
            )));
        }
        received += n as usize;
    }
    Ok((bytes, fd))
}

fn close_received(fd: Option<i32>) {
    if let Some(fd) = fd {
        // SAFETY: a descriptor this function received and nobody else owns.
        unsafe { libc::close(fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (i32, i32) {
        let mut fds = [0; 2];
        // SAFETY: a valid out-array of two ints.
        let made =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
        assert_eq!(made, 0);
        (fds[0], fds[1])
    }

    #[test]
    fn bytes_and_a_file_descriptor_travel_together() {
        let (a, b) = pair();
        let bytes: [u8; DESCRIPTOR_BYTES] = std::array::from_fn(|i| i as u8);
        let file = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        send(a, &bytes, Some(file.as_raw_fd())).unwrap();
        send(a, &bytes, None).unwrap();
        let (got, fd) = receive(b).unwrap();
        assert_eq!(got, bytes);
        let fd = fd.expect("the file descriptor came along");
        assert_ne!(fd, file.as_raw_fd(), "a new descriptor in the receiver");
        let (again, none) = receive(b).unwrap();
        assert_eq!((again, none), (bytes, None));
        // SAFETY: descriptors this test owns.
        unsafe {
            libc::close(fd);
            libc::close(a);
        }
        let error = receive(b).unwrap_err();
        assert!(error.message.contains("socket was closed after 0"), "{}", error.message);
        // SAFETY: the test's descriptor.
        unsafe { libc::close(b) };
    }
}
