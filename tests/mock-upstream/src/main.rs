//! `mock-upstream`: the mock provider as a program, for the SDK tests and the benchmark.

use std::time::Duration;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    let mut workers = 1usize;
    let mut record = true;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--workers" => workers = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--no-record" => record = false,
            _ => {
                eprintln!("usage: mock-upstream [--port N] [--workers N] [--no-record]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    match mock_upstream::MockUpstream::start_with(&format!("127.0.0.1:{port}"), workers, record) {
        Ok(mock) => {
            // The port goes to stdout so a script can read it.
            #[allow(clippy::print_stdout)]
            {
                println!("{}", mock.port);
            }
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Err(e) => {
            eprintln!("mock-upstream: failed to listen: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
