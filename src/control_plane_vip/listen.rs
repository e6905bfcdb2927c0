//! The listen probe: whether anything on this node listens on the health check's TCP port, read from the
//! kernel's socket tables (`/proc/net/tcp` and `/proc/net/tcp6` of this network namespace). No connection is
//! made, so the API server logs nothing. A kube-apiserver that is shutting down keeps its listener through
//! `--shutdown-delay-duration`; one that is gone (killed, crashed) has none, and that withdraws at once.

use std::io::{BufRead, BufReader};

/// The kernel's state number for LISTEN in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// What one line of `/proc/net/tcp{,6}` says: `Some(port)` for a listening socket, `None` for a socket in any
/// other state; `Err(())` for the header or a line that is not a socket entry.
fn parse_line(line: &str) -> Result<Option<u16>, ()> {
    let mut fields = line.split_whitespace();
    let slot = fields.next().ok_or(())?;
    if !slot.ends_with(':') {
        return Err(());
    }
    let local = fields.next().ok_or(())?;
    let _remote = fields.next().ok_or(())?;
    let state = fields.next().ok_or(())?;
    if state != LISTEN {
        return Ok(None);
    }
    let (_, port) = local.rsplit_once(':').ok_or(())?;
    u16::from_str_radix(port, 16).map(Some).map_err(|_| ())
}

/// Whether the table `lines` (one of `/proc/net/tcp{,6}`) has a socket listening on `port`. The kernel lists
/// listening sockets first, so reading stops at the first socket in another state.
pub fn table_listens_on(lines: impl Iterator<Item = String>, port: u16) -> bool {
    for line in lines {
        match parse_line(&line) {
            Ok(Some(p)) if p == port => return true,
            Ok(Some(_)) | Err(()) => {}
            Ok(None) => return false,
        }
    }
    false
}

/// Whether a socket listens on `port` on this node (IPv4 or IPv6 table). `Err` when the IPv4 table cannot be
/// read (no procfs): the probe is then off and the HTTP check alone decides. A missing IPv6 table (IPv6
/// disabled) is no error.
pub fn listens_on(port: u16) -> std::io::Result<bool> {
    let table = |path: &str| {
        std::fs::File::open(path)
            .map(|file| table_listens_on(BufReader::new(file).lines().map_while(Result::ok), port))
    };
    Ok(table("/proc/net/tcp")? || table("/proc/net/tcp6").unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1A0B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 26513 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 15262 1 0000000000000000 100 0 0 10 0
   2: 0100007F:D2A4 0100007F:192B 01 00000000:00000000 00:00000000 00000000     0        0 27001 1 0000000000000000 20 4 30 10 -1
   3: 00000000:192B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 27002 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:192B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
";

    fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
        text.lines().map(str::to_owned)
    }

    #[test]
    fn finds_listening_ports_in_both_tables() {
        assert!(table_listens_on(lines(TCP), 6667)); // 0x1A0B on 127.0.0.1
        assert!(table_listens_on(lines(TCP), 22));
        assert!(table_listens_on(lines(TCP6), 6443)); // 0x192B on ::
        assert!(!table_listens_on(lines(TCP6), 22));
    }

    #[test]
    fn a_connected_socket_is_not_a_listener_and_stops_the_scan() {
        // 6443 appears only as the remote port of an established socket, and as a listener after it (which the
        // kernel never does: listeners come first), so the scan stops at the established one.
        assert!(!table_listens_on(lines(TCP), 6443));
        assert!(!table_listens_on(lines(TCP), 53924)); // 0xD2A4, the established socket's local port
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text =
            "header\n   0: 0100007F:XYZ 00000000:0000 0A\n   1: 0100007F:1A0B 00000000:0000 0A 0\n";
        assert!(table_listens_on(lines(text), 6667));
        assert!(!table_listens_on(lines(""), 6667));
        assert!(!table_listens_on(lines("   0: nonsense"), 6667));
    }

    #[test]
    fn this_machine_lists_a_listener_it_just_opened() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listens_on(port).unwrap());
        drop(listener);
        assert!(!listens_on(port).unwrap());
    }
}
