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
//!
//! Two lanes share the threads ([`Lane`]). Logins and registrations (the
//! way into an account) may fill the whole queue. Password changes (made
//! by an account already signed in, which one account could repeat from
//! many connections) may hold only a small reserve of their own, queued
//! and running together, on top of it: a flood of them is refused at once
//! (503) once the reserve is taken, and so never takes a slot from a login,
//! which waits at most the reserve's few hashes longer than it would
//! without any password change. Their own budget per user and session
//! (`auth::throttle`) keeps one account from using even the reserve for
//! long.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Jobs waiting per hashing thread before new ones are refused: enough for
/// a burst of logins, short enough that the last one waits seconds, not
/// minutes (docs/benchmarks.md has the hash times behind it).
const QUEUED_PER_THREAD: usize = 32;

/// Password changes that may be queued or running per hashing thread: a
/// login queued behind all of them waits about this many hashes more.
const PASSWORD_CHANGES_PER_THREAD: usize = 2;

/// Which share of the queue a job may take (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Logins and registrations: the whole queue.
    SignIn,
    /// Password changes: their reserve only.
    PasswordChange,
}

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

/// Runs `work` on a hashing thread with that thread's memory, in `lane`,
/// and waits for it without blocking the caller's runtime.
pub async fn run<T: Send + 'static>(
    lane: Lane,
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, HashingUnavailable> {
    let queue = queue().as_ref().ok_or(HashingUnavailable::NoThreads)?;
    let slot = match lane {
        Lane::SignIn => Slot::take(&queue.sign_ins, queue.sign_in_limit),
        Lane::PasswordChange => Slot::take(&queue.password_changes, queue.password_change_limit),
    }
    .ok_or(HashingUnavailable::Busy)?;
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move |memory| {
        // A sign-in's place is in the queue (the limit is of waiting
        // jobs); a password change keeps its place while it runs, as the
        // reserve bounds how many hashes a login may wait behind.
        let _running = (lane == Lane::PasswordChange).then_some(slot);
        // A request that went away while its job waited needs no hash.
        if !reply.is_closed() {
            let _ = reply.send(work(memory));
        }
    });
    queue.sender.try_send(job).map_err(|error| match error {
        mpsc::TrySendError::Full(_) => HashingUnavailable::Busy,
        mpsc::TrySendError::Disconnected(_) => HashingUnavailable::Stopped,
    })?;
    answer.await.map_err(|_| HashingUnavailable::Stopped)
}

/// A place in one lane, given back when dropped (also when its job is
/// dropped unrun).
struct Slot(&'static AtomicUsize);

impl Slot {
    fn take(taken: &'static AtomicUsize, limit: usize) -> Option<Self> {
        taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < limit).then_some(now + 1)
            })
            .ok()
            .map(|_| Self(taken))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The queue and its two lanes' counts.
struct Queue {
    /// Room for both lanes at their limits, so that a job its lane admits
    /// always fits.
    sender: mpsc::SyncSender<Job>,
    /// Sign-ins waiting.
    sign_ins: AtomicUsize,
    sign_in_limit: usize,
    /// Password changes waiting or running.
    password_changes: AtomicUsize,
    password_change_limit: usize,
}

/// The jobs' queue, shared by the threads; `None` if none could start.
fn queue() -> &'static Option<Queue> {
    static QUEUE: OnceLock<Option<Queue>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let limit = *QUEUE_LIMIT.get_or_init(|| cores * QUEUED_PER_THREAD);
        let password_change_limit = cores * PASSWORD_CHANGES_PER_THREAD;
        let (sender, receiver) = mpsc::sync_channel::<Job>(limit + password_change_limit);
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
        (started > 0).then_some(Queue {
            sender,
            sign_ins: AtomicUsize::new(0),
            sign_in_limit: limit,
            password_changes: AtomicUsize::new(0),
            password_change_limit,
        })
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
