//! The threads that hash passwords: one per core, started on first use,
//! each keeping argon2's 19 MiB of working memory for its next hash, fed
//! by a bounded queue.
//!
//! One thread per core bounds how many hashes (and how much memory) a
//! burst of logins can take at once; keeping the memory avoids allocating
//! it again for every hash; and the threads run at a lower priority
//! (nice 10), so logins use the cores the other requests leave, not the
//! other way round. docs/benchmarks.md has the measurements.
//!
//! The queue is bounded: when it is full a job is refused at once
//! ([`HashingUnavailable::Busy`], a 503 with Retry-After) rather than
//! queued behind a flood, so that a legitimate login waits at most the
//! queue's length of hashes, never the flood's.

use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Jobs waiting per hashing thread before new ones are refused: enough for
/// a burst of logins, short enough that the last one waits seconds, not
/// minutes (docs/benchmarks.md has the hash times behind it).
const QUEUED_PER_THREAD: usize = 32;

static QUEUE_LIMIT: OnceLock<usize> = OnceLock::new();

/// Sets how many jobs may wait (CONDUIT_HASH_QUEUE_LIMIT). Only the first
/// call before the first hash counts; the default is 32 per core.
pub fn set_queue_limit(limit: usize) {
    let _ = QUEUE_LIMIT.set(limit.max(1));
}

use argon2::Block;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Why a job could not run on a hashing thread.
#[derive(Debug, thiserror::Error)]
pub enum HashingUnavailable {
    #[error("no password hashing thread could start")]
    NoThreads,
    #[error("the password hashing threads stopped")]
    Stopped,
    #[error("the password hashing queue is full")]
    Busy,
}

/// Runs `work` on a hashing thread with that thread's memory, and waits for
/// it without blocking the caller's runtime.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, HashingUnavailable> {
    let queue = queue().as_ref().ok_or(HashingUnavailable::NoThreads)?;
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move |memory| {
        // A request that went away while its job waited needs no hash.
        if !reply.is_closed() {
            let _ = reply.send(work(memory));
        }
    });
    queue.try_send(job).map_err(|error| match error {
        mpsc::TrySendError::Full(_) => HashingUnavailable::Busy,
        mpsc::TrySendError::Disconnected(_) => HashingUnavailable::Stopped,
    })?;
    answer.await.map_err(|_| HashingUnavailable::Stopped)
}

/// The jobs' queue, shared by the threads; `None` if none could start.
fn queue() -> &'static Option<mpsc::SyncSender<Job>> {
    static QUEUE: OnceLock<Option<mpsc::SyncSender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let limit = *QUEUE_LIMIT.get_or_init(|| cores * QUEUED_PER_THREAD);
        let (sender, receiver) = mpsc::sync_channel::<Job>(limit);
        let receiver = Arc::new(Mutex::new(receiver));
        let started = (0..cores)
            .filter(|i| {
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("conduit-hash-{i}"))
                    .spawn(move || run_jobs(&receiver))
                    .inspect_err(|error| tracing::error!(%error, "could not start a password hashing thread"))
                    .is_ok()
            })
            .count();
        (started > 0).then_some(sender)
    })
}

/// A hashing thread's life: take the next job off the queue and run it
/// with this thread's memory, until the queue closes.
fn run_jobs(receiver: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    let mut memory = Vec::new();
    loop {
        // The lock is held while waiting for a job, never while running one.
        let job = match receiver.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut memory),
            Err(_) => return,
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: both calls only take integers. On Linux the nice value is a
    // per-thread attribute: PRIO_PROCESS with this thread's id changes this
    // thread alone, and raising one's own nice value needs no privilege.
    let outcome =
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    if outcome != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "hashing at normal priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}
