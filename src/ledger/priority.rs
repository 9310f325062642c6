//! The ledger's SQLite work yields to the request path.
//!
//! The SQLite driver runs each connection on a thread of its own. On a busy core, a batch insert
//! there competes with the HTTP workers; at equal priority the scheduler lets it run for a
//! millisecond or more while requests wait, which shows as tail latency. Those threads get a
//! lower priority (a higher nice value), so that a worker that wakes up runs first, but not so
//! low that the ledger falls behind: under full load it must still get the CPU its writes need
//! (several µs a record). Nice 5 weighs a third of nice 0, so against one busy worker the ledger
//! can have a quarter of the core, about twice what it needs. Nice 10 (a tenth, under 10% of the
//! core) was too little on a slower machine: at 64 connections and ~16k requests/s its queue grew
//! by ~3,000 records a second, to 84k records and 180 MiB of RSS after 30 s, where at nice 5 it
//! stayed under 2k records and 50 MiB. Linux only; elsewhere this does nothing.

/// The nice value given to database driver threads.
pub const DB_THREAD_NICE: i32 = 5;
/// Thread names (as the kernel truncates them) of the SQLite driver's connection threads.
const DB_THREAD_PREFIX: &str = "sqlx-sqlite";

/// Lowers the priority of the database driver's threads that do not have it yet; returns how
/// many were changed. Cheap (a directory listing of this process's threads): called after
/// connecting and periodically, since the pool replaces connections (and their threads) over time.
#[cfg(target_os = "linux")]
pub fn lower_db_threads() -> usize {
    use rustix::process::{getpriority_process, setpriority_process, Pid};
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut changed = 0;
    for task in tasks.flatten() {
        let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        if !comm.starts_with(DB_THREAD_PREFIX) {
            continue;
        }
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        // On Linux the nice value is per thread, and a thread id names one thread here.
        if getpriority_process(Some(tid)).is_ok_and(|nice| nice < DB_THREAD_NICE)
            && setpriority_process(Some(tid), DB_THREAD_NICE).is_ok()
        {
            changed += 1;
        }
    }
    changed
}

#[cfg(not(target_os = "linux"))]
pub fn lower_db_threads() -> usize {
    0
}

/// Gives the calling thread the same lower priority (the ledger's spooler thread: its work per
/// record is small, but it must not take the core from a worker that has a request to answer).
#[cfg(target_os = "linux")]
pub fn lower_this_thread() -> bool {
    // On Linux the nice value is per thread: "process" 0 is the calling thread.
    rustix::process::setpriority_process(None, DB_THREAD_NICE).is_ok()
}

#[cfg(not(target_os = "linux"))]
pub fn lower_this_thread() -> bool {
    false
}
