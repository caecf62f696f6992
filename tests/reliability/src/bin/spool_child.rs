//! Child process of the crash test: opens the enrolled agent in DATA_DIR and
//! submits events FROM..TO, flushing every few, printing `submitted N` after
//! each event is accepted into the spool. The parent kills it with SIGKILL at
//! random moments.
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_reliability::{agent, event, fast_config};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, from, to): (String, u64, u64) = (
        args[1].clone(),
        args[2].parse().unwrap(),
        args[3].parse().unwrap(),
    );
    let a = agent(
        std::path::Path::new(&dir),
        fast_config("crash"),
        HttpTransport::new(HttpOptions::default()).unwrap(),
    );
    let mut out = std::io::stdout().lock();
    for n in from..to {
        a.submit(event(n)).expect("submit");
        writeln!(out, "submitted {n}").unwrap();
        out.flush().unwrap();
        if n % 3 == 0 {
            let _ = a.flush(2);
        }
    }
    let _ = a.flush(10);
    writeln!(out, "done").unwrap();
}
