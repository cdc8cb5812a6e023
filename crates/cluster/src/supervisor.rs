//! The supervisor core: every decision of the master, without I/O and without a clock.
//!
//! [`Supervisor`] is a state machine in the shape of quinn-proto's `Connection`: the driver
//! feeds it what happened (`handle_*`, each with the current time), then takes what to do
//! ([`poll_action`](Supervisor::poll_action)) and when to call back
//! ([`poll_timeout`](Supervisor::poll_timeout)). It forks nothing, reads no clock and sends no
//! signal, so its tests run in virtual time: the backoff curve, the escalation from a drain to
//! `SIGKILL`, the "cannot boot" exit code, the reload ordering, `TTIN`/`TTOU`, the heartbeat
//! timeout and the binary upgrade are all checked without a process.
//!
//! The model: the master keeps `workers` *slots*. Each slot wants one ready worker of the
//! current *generation*. A `SIGHUP` starts a new generation: every slot gets a new worker, and
//! only when that one reports ready is the slot's old worker told to drain. A worker that dies
//! is replaced in its slot; one that dies before it reported ready waits for a backoff first.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Delay before respawning a slot whose worker died before it reported ready (the first
/// such death); each further one multiplies it by [`BACKOFF_FACTOR`], up to [`BACKOFF_MAX`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Growth of the respawn delay per consecutive death before ready.
pub const BACKOFF_FACTOR: f64 = 1.5;

/// Longest respawn delay: a worker that cannot start is retried at least this often.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Time after a drain's deadline (or a fast stop) before the master sends `SIGKILL`: the
/// worker enforces the deadline itself, this is the backstop for one that cannot.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// Time a new master (binary upgrade) has to report that all its workers are ready before
/// the old master gives up on it, stops it, and keeps serving.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(60);

/// Most worker slots (`SIGTTIN` stops there).
pub const MAX_WORKERS: usize = 1024;

/// Exit code by which a worker says "I cannot boot" (bad configuration, missing file): the
/// master does not respawn it. Like gunicorn's `WORKER_BOOT_ERROR` (3) and nginx's 2.
pub const EXIT_CANNOT_BOOT: i32 = 3;

/// A worker's process id.
pub type Pid = u32;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit(code)`.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl From<std::process::ExitStatus> for Exit {
    fn from(s: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (s.code(), s.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(-1),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {s} ({})", signal_name(s)),
        }
    }
}

/// What a worker reports with each heartbeat: its counters since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: u64,
    /// Requests answered.
    pub requests: u64,
    /// Connections open now.
    pub active: u64,
}

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a worker for `slot`, then report it with
    /// [`handle_spawned`](Supervisor::handle_spawned) or
    /// [`handle_spawn_failed`](Supervisor::handle_spawn_failed).
    Spawn {
        /// The slot (the worker's index).
        slot: usize,
    },
    /// Ask a worker over its pipe to stop accepting, finish what it has, and exit within
    /// `timeout`.
    Drain {
        /// The worker.
        pid: Pid,
        /// Time it has.
        timeout: Duration,
    },
    /// Ask a worker over its pipe to exit now.
    Stop {
        /// The worker.
        pid: Pid,
    },
    /// Send `signal` to a process.
    Kill {
        /// The process.
        pid: Pid,
        /// The signal number (`libc::SIGKILL`, …).
        signal: i32,
    },
    /// Start a new master from the executable on disk with the listening socket inherited,
    /// then report it with [`handle_upgrade_spawned`](Supervisor::handle_upgrade_spawned) or
    /// [`handle_upgrade_failed`](Supervisor::handle_upgrade_failed).
    Upgrade,
    /// Every slot has a ready worker for the first time: the cluster serves. A master started
    /// by an upgrade tells its parent now.
    Ready,
    /// A line for the operator's log.
    Log(String),
    /// Stop the master: every worker is gone.
    Exit(Outcome),
}

/// Why the master stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A stop signal (`SIGTERM`, `SIGINT`, `SIGQUIT`).
    Stopped,
    /// A new master took over (binary upgrade) and this one drained.
    Upgraded,
    /// A worker exited with [`EXIT_CANNOT_BOOT`] before it was ready.
    CannotBoot {
        /// Its slot.
        slot: usize,
        /// Its process id.
        pid: Pid,
    },
}

/// The state of one worker, as the status table shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Started, not yet ready.
    Starting,
    /// Serving.
    Ready,
    /// Asked to drain (graceful stop, reload, fewer workers).
    Draining,
    /// Asked to exit now.
    Stopping,
    /// Sent `SIGKILL`, not yet reaped.
    Killed,
}

impl WorkerState {
    /// The state's name in the status table.
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Ready => "ready",
            WorkerState::Draining => "draining",
            WorkerState::Stopping => "stopping",
            WorkerState::Killed => "killed",
        }
    }
}

/// One worker as the master sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its slot (index).
    pub slot: usize,
    /// Its process id.
    pub pid: Pid,
    /// The reload generation it belongs to (0 at start, +1 per `SIGHUP`).
    pub generation: u64,
    /// Its state.
    pub state: WorkerState,
    /// When it was started.
    pub started: Instant,
    /// Its counters at its last heartbeat.
    pub counters: Counters,
    /// How many times its slot's worker was replaced after an unexpected exit or a timeout.
    pub restarts: u64,
}

/// The supervisor's settings (the parts of [`Config`](crate::Config) it decides with).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Worker slots at start.
    pub workers: usize,
    /// Time a draining worker has to finish.
    pub graceful_timeout: Duration,
    /// Time without a heartbeat (or, at start, without the ready message) after which a
    /// worker is killed and replaced; `None` disables the check.
    pub worker_timeout: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Starting { boot_deadline: Option<Instant> },
    Ready,
    Draining { kill_at: Instant },
    Stopping { kill_at: Instant },
    Killed,
}

#[derive(Debug)]
struct Proc {
    pid: Pid,
    slot: usize,
    generation: u64,
    state: State,
    started: Instant,
    last_beat: Instant,
    counters: Counters,
}

impl Proc {
    fn is_live(&self) -> bool {
        matches!(self.state, State::Starting { .. } | State::Ready)
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// Deaths before ready since the slot last had a ready worker.
    failures: u32,
    restarts: u64,
    /// No respawn before this time.
    respawn_at: Option<Instant>,
    /// A `Spawn` went out and the driver has not answered yet.
    spawning: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Upgrade {
    Idle,
    /// `Action::Upgrade` went out; the driver has not answered yet.
    Spawning,
    /// The new master runs and has not reported ready.
    Waiting {
        pid: Pid,
        deadline: Instant,
    },
    /// The new master is ready; this one drains and exits.
    Done,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Running,
    /// Draining (graceful) or stopping (fast) every worker; then exit with the outcome.
    Stopping {
        graceful: bool,
        outcome: Outcome,
    },
    Exited,
}

/// The master's decisions, without I/O. See the [module docs](self).
#[derive(Debug)]
pub struct Supervisor {
    policy: Policy,
    now: Instant,
    slots: Vec<Slot>,
    /// Slots wanted now (`policy.workers`, changed by `TTIN`/`TTOU`).
    target: usize,
    procs: Vec<Proc>,
    generation: u64,
    /// A reload started and not every slot has a ready worker of the new generation yet.
    reloading: bool,
    /// `Action::Ready` went out.
    announced: bool,
    mode: Mode,
    upgrade: Upgrade,
    actions: VecDeque<Action>,
}

impl Supervisor {
    /// A supervisor that will start `policy.workers` workers (at least one).
    pub fn new(policy: Policy, now: Instant) -> Supervisor {
        let target = policy.workers.clamp(1, MAX_WORKERS);
        let mut sup = Supervisor {
            policy,
            now,
            slots: (0..target).map(|_| Slot::default()).collect(),
            target,
            procs: Vec::new(),
            generation: 0,
            reloading: false,
            announced: false,
            mode: Mode::Running,
            upgrade: Upgrade::Idle,
            actions: VecDeque::new(),
        };
        sup.reconcile();
        sup
    }

    /// The next thing to do, if any.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`handle_timeout`](Supervisor::handle_timeout) next (a respawn delay, a
    /// heartbeat or boot deadline, a kill), if anything waits for time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.mode == Mode::Running {
            for (i, s) in self.slots.iter().enumerate().take(self.target) {
                if let Some(t) = s.respawn_at
                    && !s.spawning
                    && self.current(i).is_none()
                {
                    at(t);
                }
            }
        }
        for p in &self.procs {
            match p.state {
                State::Starting {
                    boot_deadline: Some(t),
                } => at(t),
                State::Ready => {
                    if let Some(timeout) = self.policy.worker_timeout {
                        at(p.last_beat + timeout);
                    }
                }
                State::Draining { kill_at } | State::Stopping { kill_at } => at(kill_at),
                State::Starting {
                    boot_deadline: None,
                }
                | State::Killed => {}
            }
        }
        if let Upgrade::Waiting { deadline, .. } = self.upgrade {
            at(deadline);
        }
        next
    }

    /// The workers, for the status table (slot order, then draining ones).
    pub fn workers(&self) -> impl Iterator<Item = WorkerInfo> + '_ {
        let mut procs: Vec<&Proc> = self.procs.iter().collect();
        procs.sort_by_key(|p| (!p.is_live(), p.slot, p.generation));
        procs.into_iter().map(|p| WorkerInfo {
            slot: p.slot,
            pid: p.pid,
            generation: p.generation,
            state: match p.state {
                State::Starting { .. } => WorkerState::Starting,
                State::Ready => WorkerState::Ready,
                State::Draining { .. } => WorkerState::Draining,
                State::Stopping { .. } => WorkerState::Stopping,
                State::Killed => WorkerState::Killed,
            },
            started: p.started,
            counters: p.counters,
            restarts: self.slots.get(p.slot).map_or(0, |s| s.restarts),
        })
    }

    /// Worker slots wanted now.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The current reload generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the master is stopping (a load balancer should stop sending it traffic).
    pub fn is_stopping(&self) -> bool {
        self.mode != Mode::Running
    }

    /// The driver started the worker asked for by `Spawn { slot }`.
    pub fn handle_spawned(&mut self, slot: usize, pid: Pid, now: Instant) {
        self.tick(now);
        if let Some(s) = self.slots.get_mut(slot) {
            s.spawning = false;
        }
        let boot_deadline = self.policy.worker_timeout.map(|t| self.now + t);
        self.procs.push(Proc {
            pid,
            slot,
            generation: self.generation,
            state: State::Starting { boot_deadline },
            started: self.now,
            last_beat: self.now,
            counters: Counters::default(),
        });
        self.reconcile();
    }

    /// The driver could not start the worker asked for by `Spawn { slot }` (fork failed).
    pub fn handle_spawn_failed(&mut self, slot: usize, error: &str, now: Instant) {
        self.tick(now);
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        s.spawning = false;
        s.failures += 1;
        let delay = backoff(s.failures);
        s.respawn_at = Some(self.now + delay);
        self.log(format!(
            "worker {slot}: cannot start: {error}; retrying in {}",
            secs(delay)
        ));
        self.reconcile();
    }

    /// A worker reported ready over its pipe.
    pub fn handle_ready(&mut self, pid: Pid, now: Instant) {
        self.tick(now);
        let Some(p) = self.procs.iter_mut().find(|p| p.pid == pid) else {
            return;
        };
        p.last_beat = self.now;
        if let State::Starting { .. } = p.state {
            p.state = State::Ready;
            if let Some(s) = self.slots.get_mut(p.slot) {
                s.failures = 0;
                s.respawn_at = None;
            }
        }
        self.reconcile();
    }

    /// A worker sent a heartbeat with its counters.
    pub fn handle_heartbeat(&mut self, pid: Pid, counters: Counters, now: Instant) {
        self.tick(now);
        if let Some(p) = self.procs.iter_mut().find(|p| p.pid == pid) {
            p.last_beat = self.now;
            p.counters = counters;
        }
    }

    /// A worker sent something that is not the protocol: it is killed (and replaced).
    pub fn handle_bad_message(&mut self, pid: Pid, what: &str, now: Instant) {
        self.tick(now);
        let Some(i) = self.procs.iter().position(|p| p.pid == pid) else {
            return;
        };
        let slot = self.procs[i].slot;
        self.log(format!(
            "worker {slot} pid {pid}: bad message on its pipe ({what}); killing it"
        ));
        self.kill(i, true);
        self.reconcile();
    }

    /// A child exited (a worker, or the new master of an upgrade).
    pub fn handle_exit(&mut self, pid: Pid, exit: Exit, now: Instant) {
        self.tick(now);
        if let Upgrade::Waiting { pid: new, .. } = self.upgrade
            && new == pid
        {
            self.upgrade = Upgrade::Idle;
            if self.mode == Mode::Running {
                self.log(format!(
                    "upgrade failed: the new master (pid {pid}) ended with {exit} before its \
                     workers were ready; still serving with this one"
                ));
            }
            self.reconcile();
            return;
        }
        let Some(i) = self.procs.iter().position(|p| p.pid == pid) else {
            return;
        };
        let p = self.procs.swap_remove(i);
        let slot = p.slot;
        match p.state {
            State::Starting { .. } if exit == Exit::Code(EXIT_CANNOT_BOOT) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    s.failures += 1;
                    s.respawn_at = Some(self.now + backoff(s.failures));
                }
                self.cannot_boot(slot, pid, p.generation);
            }
            State::Starting { .. } | State::Ready => {
                let stopping = self.mode != Mode::Running;
                if let Some(s) = self.slots.get_mut(slot) {
                    s.restarts += u64::from(!stopping);
                    if p.state == State::Ready {
                        s.respawn_at = None;
                    } else {
                        s.failures += 1;
                        s.respawn_at = Some(self.now + backoff(s.failures));
                    }
                }
                let then = match self.slots.get(slot) {
                    _ if stopping => String::new(),
                    Some(s) if slot < self.target => match s.respawn_at {
                        Some(t) if t > self.now => {
                            format!(
                                "; it never became ready, respawning in {}",
                                secs(t - self.now)
                            )
                        }
                        _ => "; respawning".to_owned(),
                    },
                    _ => String::new(),
                };
                self.log(format!("worker {slot} pid {pid} ended with {exit}{then}"));
            }
            State::Draining { .. } | State::Stopping { .. } => {
                if !matches!(exit, Exit::Code(0)) {
                    self.log(format!(
                        "worker {slot} pid {pid} ended with {exit} while stopping"
                    ));
                }
            }
            State::Killed => {}
        }
        self.reconcile();
    }

    /// A signal reached the master: `SIGTERM`/`SIGINT` (graceful stop), `SIGQUIT` (fast
    /// stop), `SIGHUP` (reload), `SIGTTIN`/`SIGTTOU` (one worker more/less), `SIGUSR2`
    /// (binary upgrade). Others are ignored.
    pub fn handle_signal(&mut self, signal: i32, now: Instant) {
        self.tick(now);
        match signal {
            libc::SIGTERM | libc::SIGINT => self.begin_stop(true, Outcome::Stopped),
            libc::SIGQUIT => self.begin_stop(false, Outcome::Stopped),
            libc::SIGHUP => self.reload(),
            libc::SIGTTIN if self.mode == Mode::Running && self.target < MAX_WORKERS => {
                self.target += 1;
                if self.slots.len() < self.target {
                    self.slots.push(Slot::default());
                }
                self.log(format!("SIGTTIN: {} workers", self.target));
            }
            libc::SIGTTOU if self.mode == Mode::Running && self.target > 1 => {
                self.target -= 1;
                self.log(format!("SIGTTOU: {} workers", self.target));
            }
            libc::SIGUSR2 => self.start_upgrade(),
            _ => {}
        }
        self.reconcile();
    }

    /// Time passed: respawns whose delay is over, kills whose deadline is.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let now = self.now;
        for i in 0..self.procs.len() {
            let p = &self.procs[i];
            let (slot, pid) = (p.slot, p.pid);
            let overdue = match p.state {
                State::Starting {
                    boot_deadline: Some(t),
                } if t <= now => Some(format!(
                    "did not report ready within {}",
                    secs(self.policy.worker_timeout.unwrap_or_default())
                )),
                State::Ready => self
                    .policy
                    .worker_timeout
                    .filter(|&t| p.last_beat + t <= now)
                    .map(|_| format!("sent no heartbeat for {}", secs(now - p.last_beat))),
                State::Draining { kill_at } | State::Stopping { kill_at } if kill_at <= now => {
                    Some("did not stop in time".to_owned())
                }
                _ => None,
            };
            if let Some(why) = overdue {
                let failed = matches!(p.state, State::Starting { .. } | State::Ready);
                self.log(format!("worker {slot} pid {pid} {why}; killing it"));
                self.kill(i, failed);
            }
        }
        if let Upgrade::Waiting { pid, deadline } = self.upgrade
            && deadline <= now
        {
            self.log(format!(
                "upgrade failed: the new master (pid {pid}) was not ready within {}; \
                 stopping it, still serving with this one",
                secs(UPGRADE_TIMEOUT)
            ));
            self.actions.push_back(Action::Kill {
                pid,
                signal: libc::SIGTERM,
            });
            self.upgrade = Upgrade::Idle;
        }
        self.reconcile();
    }

    /// The driver started the new master asked for by [`Action::Upgrade`].
    pub fn handle_upgrade_spawned(&mut self, pid: Pid, now: Instant) {
        self.tick(now);
        if self.upgrade == Upgrade::Spawning {
            self.upgrade = Upgrade::Waiting {
                pid,
                deadline: self.now + UPGRADE_TIMEOUT,
            };
            self.log(format!(
                "upgrade: started a new master, pid {pid}; waiting for its workers"
            ));
        }
        self.reconcile();
    }

    /// The driver could not start the new master.
    pub fn handle_upgrade_failed(&mut self, error: &str, now: Instant) {
        self.tick(now);
        if self.upgrade == Upgrade::Spawning {
            self.upgrade = Upgrade::Idle;
            self.log(format!(
                "upgrade failed: cannot start a new master: {error}; still serving"
            ));
        }
        self.reconcile();
    }

    /// The new master reported that all its workers are ready: this master drains its
    /// workers and exits ([`Outcome::Upgraded`]).
    pub fn handle_upgrade_ready(&mut self, now: Instant) {
        self.tick(now);
        if let Upgrade::Waiting { pid, .. } = self.upgrade
            && self.mode == Mode::Running
        {
            self.upgrade = Upgrade::Done;
            self.log(format!(
                "upgrade: the new master (pid {pid}) is ready; draining this one's workers"
            ));
            self.begin_stop(true, Outcome::Upgraded);
        }
        self.reconcile();
    }

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn log(&mut self, line: String) {
        self.actions.push_back(Action::Log(line));
    }

    /// The live worker of the current generation in `slot`.
    fn current(&self, slot: usize) -> Option<&Proc> {
        self.procs
            .iter()
            .find(|p| p.slot == slot && p.generation == self.generation && p.is_live())
    }

    /// SIGKILL to `procs[i]`; `failed` counts it against its slot (a timeout).
    fn kill(&mut self, i: usize, failed: bool) {
        let p = &mut self.procs[i];
        let was_starting = matches!(p.state, State::Starting { .. });
        let pid = p.pid;
        let slot = p.slot;
        p.state = State::Killed;
        self.actions.push_back(Action::Kill {
            pid,
            signal: libc::SIGKILL,
        });
        if failed
            && self.mode == Mode::Running
            && let Some(s) = self.slots.get_mut(slot)
        {
            s.restarts += 1;
            if was_starting {
                s.failures += 1;
                s.respawn_at = Some(self.now + backoff(s.failures));
            } else {
                s.respawn_at = None;
            }
        }
    }

    fn drain(&mut self, i: usize) {
        let timeout = self.policy.graceful_timeout;
        let p = &mut self.procs[i];
        p.state = State::Draining {
            kill_at: self.now + timeout + KILL_GRACE,
        };
        let pid = p.pid;
        self.actions.push_back(Action::Drain { pid, timeout });
    }

    fn stop_fast(&mut self, i: usize) {
        let kill_at = self.now + KILL_GRACE;
        let p = &mut self.procs[i];
        if let State::Draining { kill_at: k } = p.state {
            p.state = State::Stopping {
                kill_at: k.min(kill_at),
            };
        } else {
            p.state = State::Stopping { kill_at };
        }
        let pid = p.pid;
        self.actions.push_back(Action::Stop { pid });
    }

    fn begin_stop(&mut self, graceful: bool, outcome: Outcome) {
        match &mut self.mode {
            Mode::Exited => return,
            Mode::Stopping { graceful: g, .. } => {
                if graceful || !*g {
                    return; // already stopping at least this fast
                }
                *g = false;
                self.log("SIGQUIT: stopping the workers now".to_owned());
            }
            Mode::Running => {
                let how = if graceful {
                    format!(
                        "draining the workers (up to {})",
                        secs(self.policy.graceful_timeout)
                    )
                } else {
                    "stopping the workers now".to_owned()
                };
                if outcome == Outcome::Stopped {
                    self.log(format!("stop: {how}"));
                }
                self.mode = Mode::Stopping { graceful, outcome };
                self.reloading = false;
            }
        }
        for i in 0..self.procs.len() {
            match self.procs[i].state {
                State::Starting { .. } | State::Ready if graceful => self.drain(i),
                State::Starting { .. } | State::Ready | State::Draining { .. } if !graceful => {
                    self.stop_fast(i);
                }
                _ => {}
            }
        }
        // A new master that has not taken over is stopped with this one.
        if let Upgrade::Waiting { pid, .. } = self.upgrade {
            self.actions.push_back(Action::Kill {
                pid,
                signal: libc::SIGTERM,
            });
        }
    }

    fn reload(&mut self) {
        if self.mode != Mode::Running {
            return;
        }
        self.generation += 1;
        self.reloading = true;
        for s in &mut self.slots {
            s.failures = 0;
            s.respawn_at = None;
        }
        self.log(format!(
            "reload: starting {} new workers (generation {}); the old ones drain as each \
             new one is ready",
            self.target, self.generation
        ));
    }

    fn start_upgrade(&mut self) {
        if self.mode != Mode::Running {
            return;
        }
        if self.upgrade != Upgrade::Idle {
            self.log("SIGUSR2: an upgrade is already in progress".to_owned());
            return;
        }
        self.upgrade = Upgrade::Spawning;
        self.actions.push_back(Action::Upgrade);
    }

    fn cannot_boot(&mut self, slot: usize, pid: Pid, generation: u64) {
        // During a reload, the old generation still serves: abandon the reload, keep it.
        let old_serving = self
            .procs
            .iter()
            .any(|p| p.state == State::Ready && p.generation < generation);
        if self.mode == Mode::Running && old_serving && generation == self.generation {
            self.log(format!(
                "reload failed: worker {slot} pid {pid} cannot boot (exit code \
                 {EXIT_CANNOT_BOOT}); keeping the workers that serve now"
            ));
            self.abandon_reload();
            return;
        }
        if self.mode == Mode::Running {
            self.log(format!(
                "worker {slot} pid {pid} cannot boot (exit code {EXIT_CANNOT_BOOT}); not \
                 respawning, stopping"
            ));
            self.begin_stop(true, Outcome::CannotBoot { slot, pid });
        }
    }

    /// Adopts the old worker of every slot that has no ready new one, and stops the new ones
    /// still starting there.
    fn abandon_reload(&mut self) {
        self.reloading = false;
        for slot in 0..self.slots.len() {
            let new_ready = self.procs.iter().any(|p| {
                p.slot == slot && p.generation == self.generation && p.state == State::Ready
            });
            if new_ready {
                continue;
            }
            let old = self
                .procs
                .iter()
                .position(|p| p.slot == slot && p.state == State::Ready);
            if let Some(o) = old {
                self.procs[o].generation = self.generation;
                for i in 0..self.procs.len() {
                    if i != o
                        && self.procs[i].slot == slot
                        && matches!(self.procs[i].state, State::Starting { .. })
                    {
                        self.stop_fast(i);
                    }
                }
                self.slots[slot].failures = 0;
                self.slots[slot].respawn_at = None;
            }
        }
    }

    /// Brings the workers towards what is wanted: a ready worker of the current generation
    /// in each slot below the target, nothing else. Runs after every input.
    fn reconcile(&mut self) {
        match &self.mode {
            Mode::Exited => return,
            Mode::Stopping { outcome, .. } => {
                let upgrade_child = matches!(self.upgrade, Upgrade::Waiting { .. });
                if self.procs.is_empty() && !upgrade_child {
                    let outcome = outcome.clone();
                    self.mode = Mode::Exited;
                    self.actions.push_back(Action::Exit(outcome));
                }
                return;
            }
            Mode::Running => {}
        }
        for slot in 0..self.slots.len() {
            if slot >= self.target {
                // SIGTTOU: drain whatever runs in slots above the target.
                for i in 0..self.procs.len() {
                    if self.procs[i].slot == slot && self.procs[i].is_live() {
                        self.drain(i);
                    }
                }
                self.slots[slot].respawn_at = None;
                continue;
            }
            match self.current(slot).map(|p| p.state) {
                None => {
                    let s = &mut self.slots[slot];
                    if !s.spawning && s.respawn_at.is_none_or(|t| t <= self.now) {
                        s.spawning = true;
                        s.respawn_at = None;
                        self.actions.push_back(Action::Spawn { slot });
                    }
                }
                Some(State::Ready) => {
                    // The new worker serves: the slot's older ones drain.
                    let current = self.current(slot).map(|p| p.pid);
                    for i in 0..self.procs.len() {
                        let p = &self.procs[i];
                        if p.slot == slot && p.is_live() && Some(p.pid) != current {
                            self.drain(i);
                        }
                    }
                }
                Some(_) => {}
            }
        }
        let all_ready =
            (0..self.target).all(|s| self.current(s).is_some_and(|p| p.state == State::Ready));
        if all_ready && !self.announced {
            self.announced = true;
            self.log(format!("{} workers ready", self.target));
            self.actions.push_back(Action::Ready);
        }
        let old_live = self
            .procs
            .iter()
            .any(|p| p.is_live() && p.generation < self.generation);
        if all_ready && self.reloading && !old_live {
            self.reloading = false;
            self.log(format!(
                "reload: generation {} serves on every slot",
                self.generation
            ));
        }
    }
}

/// The respawn delay after `failures` consecutive deaths before ready.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let secs = BACKOFF_BASE.as_secs_f64() * BACKOFF_FACTOR.powi(failures as i32 - 1);
    Duration::from_secs_f64(secs.min(BACKOFF_MAX.as_secs_f64()))
}

/// A duration for a log line: `1.5s`, `250ms`.
fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s:.0}s")
        } else {
            format!("{s:.1}s")
        }
    }
}

/// The name of a signal number, for log lines.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPWR => "SIGPWR",
        _ => "signal",
    }
}
