//! The process-wide gate of argon2id work: at most twice the CPUs (at least
//! 4) computations at once, each on a memory block of the gate's own pool,
//! allocated once and reused. So however many logins and writes arrive
//! together, argon2 holds a fixed amount of memory (4 × 19 MiB on 2 cores)
//! instead of one fresh 19 MiB block per attempt that the allocator may keep.
//! A login waits at most [`WAIT_AT_MOST`], behind at most [`MAX_WAITING`]
//! others, and is told to come back otherwise: a flood of wrong passwords
//! neither parks a thread per attempt nor makes other logins wait long.
//! (docs/operations.md, "Limits".)

use std::sync::{Condvar, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::{Block, Params};

/// Logins waiting for a turn at most; one more is answered "busy".
pub(crate) const MAX_WAITING: usize = 64;
/// How long a login waits for a turn at most.
pub(crate) const WAIT_AT_MOST: Duration = Duration::from_secs(2);

struct Gate {
    state: Mutex<State>,
    freed: Condvar,
    max: usize,
}

struct State {
    /// Memory blocks not in use.
    free: Vec<Vec<Block>>,
    /// Blocks made so far (at most `max`).
    made: usize,
    /// Callers waiting for a turn.
    waiting: usize,
}

static GATE: LazyLock<Gate> = LazyLock::new(|| Gate {
    state: Mutex::new(State { free: Vec::new(), made: 0, waiting: 0 }),
    freed: Condvar::new(),
    max: std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4)),
});

/// One argon2 computation's turn, with its memory; dropping it gives both back.
pub(crate) struct Turn {
    memory: Vec<Block>,
}

impl Turn {
    /// Takes a turn. `bounded`: wait at most [`WAIT_AT_MOST`] behind at most
    /// [`MAX_WAITING`] others (`None` otherwise); else wait as long as it takes.
    pub(crate) fn take(bounded: bool) -> Option<Turn> {
        let gate = &*GATE;
        let deadline = Instant::now() + WAIT_AT_MOST;
        let mut state = gate.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(memory) = state.free.pop() {
                return Some(Turn { memory });
            }
            if state.made < gate.max {
                state.made += 1;
                drop(state);
                return Some(Turn { memory: vec![Block::default(); Params::default().block_count()] });
            }
            if bounded && state.waiting >= MAX_WAITING {
                return None;
            }
            state.waiting += 1;
            state = if bounded {
                let left = deadline.saturating_duration_since(Instant::now());
                gate.freed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
            } else {
                gate.freed.wait(state).unwrap_or_else(PoisonError::into_inner)
            };
            state.waiting -= 1;
            if bounded && Instant::now() >= deadline && state.free.is_empty() {
                return None;
            }
        }
    }

    /// At least `blocks` blocks of memory (the pool's, grown for a hash with
    /// more memory than the default).
    pub(crate) fn memory(&mut self, blocks: usize) -> &mut [Block] {
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::default());
        }
        &mut self.memory[..blocks]
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut memory = std::mem::take(&mut self.memory);
        // A block grown for an unusual hash goes back at the default size.
        memory.truncate(Params::default().block_count());
        memory.shrink_to_fit();
        let gate = &*GATE;
        let mut state = gate.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.free.push(memory);
        drop(state);
        gate.freed.notify_one();
    }
}
