//! The supervisor core in virtual time: no process is forked, no clock is read.

use std::time::{Duration, Instant};

use cluster::supervisor::{
    Action, BACKOFF_MAX, EXIT_CANNOT_BOOT, Exit, KILL_GRACE, Outcome, Pid, Policy, Supervisor,
    UPGRADE_TIMEOUT, WorkerState, backoff,
};

const GRACE: Duration = Duration::from_secs(30);
const SIGKILL: i32 = libc::SIGKILL;

/// A supervisor and a pretend driver: spawns succeed with fresh pids, time moves only when
/// a test says so, and every action is recorded with the (virtual) time it came out.
struct Sim {
    sup: Supervisor,
    t0: Instant,
    now: Instant,
    next_pid: Pid,
    /// Every action, with its time since start.
    log: Vec<(Duration, Action)>,
    /// The pids spawned, per slot, in order.
    spawned: Vec<(Duration, usize, Pid)>,
    /// What to do right after each spawn (a worker that dies at start).
    on_spawn: Option<Exit>,
}

impl Sim {
    fn new(workers: usize, worker_timeout: Option<Duration>) -> Sim {
        let t0 = Instant::now();
        let policy = Policy {
            workers,
            graceful_timeout: GRACE,
            worker_timeout,
        };
        let mut sim = Sim {
            sup: Supervisor::new(policy, t0),
            t0,
            now: t0,
            next_pid: 100,
            log: Vec::new(),
            spawned: Vec::new(),
            on_spawn: None,
        };
        sim.pump();
        sim
    }

    fn t(&self) -> Duration {
        self.now - self.t0
    }

    /// Takes every action, answering spawns and upgrades as a driver would.
    fn pump(&mut self) {
        while let Some(a) = self.sup.poll_action() {
            self.log.push((self.t(), a.clone()));
            match a {
                Action::Spawn { slot } => {
                    self.next_pid += 1;
                    let pid = self.next_pid;
                    self.spawned.push((self.t(), slot, pid));
                    self.sup.handle_spawned(slot, pid, self.now);
                    if let Some(exit) = self.on_spawn {
                        self.sup.handle_exit(pid, exit, self.now);
                    }
                }
                Action::Upgrade => {
                    self.next_pid += 1;
                    self.sup.handle_upgrade_spawned(self.next_pid, self.now);
                }
                _ => {}
            }
        }
    }

    /// Moves time forward by `d`, waking the supervisor at each deadline it asks for.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut wakes = 0;
        while let Some(at) = self.sup.poll_timeout() {
            if at > end {
                break;
            }
            wakes += 1;
            assert!(
                wakes < 10_000,
                "the supervisor asks to be woken without end at {at:?}"
            );
            self.now = self.now.max(at);
            self.sup.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
        self.sup.handle_timeout(self.now);
        self.pump();
    }

    fn ready(&mut self, pid: Pid) {
        self.sup.handle_ready(pid, self.now);
        self.pump();
    }

    fn exit(&mut self, pid: Pid, exit: Exit) {
        self.sup.handle_exit(pid, exit, self.now);
        self.pump();
    }

    fn signal(&mut self, sig: i32) {
        self.sup.handle_signal(sig, self.now);
        self.pump();
    }

    /// The pids of live (starting or ready) workers, by slot.
    fn live(&self) -> Vec<(usize, Pid, WorkerState)> {
        self.sup
            .workers()
            .filter(|w| matches!(w.state, WorkerState::Starting | WorkerState::Ready))
            .map(|w| (w.slot, w.pid, w.state))
            .collect()
    }

    /// Actions logged since index `from` that match `f`.
    fn since(&self, from: usize, f: impl Fn(&Action) -> bool) -> Vec<(Duration, Action)> {
        self.log[from..]
            .iter()
            .filter(|(_, a)| f(a))
            .cloned()
            .collect()
    }

    /// Starts every worker and makes it ready.
    fn all_ready(&mut self) -> Vec<Pid> {
        let pids: Vec<Pid> = self.live().iter().map(|w| w.1).collect();
        for &p in &pids {
            self.ready(p);
        }
        pids
    }
}

fn is_spawn(a: &Action) -> bool {
    matches!(a, Action::Spawn { .. })
}

#[test]
fn start_spawns_one_per_slot_and_announces_ready_once() {
    let mut sim = Sim::new(3, None);
    let slots: Vec<usize> = sim.spawned.iter().map(|s| s.1).collect();
    assert_eq!(slots, [0, 1, 2]);
    assert!(sim.since(0, |a| *a == Action::Ready).is_empty());
    let pids = sim.all_ready();
    assert_eq!(sim.since(0, |a| *a == Action::Ready).len(), 1);
    // A respawn later does not announce again.
    sim.exit(pids[1], Exit::Signal(SIGKILL));
    let new = sim.live().iter().find(|w| w.0 == 1).unwrap().1;
    sim.ready(new);
    assert_eq!(sim.since(0, |a| *a == Action::Ready).len(), 1);
}

#[test]
fn a_ready_worker_that_dies_is_replaced_at_once() {
    let mut sim = Sim::new(2, None);
    let pids = sim.all_ready();
    sim.advance(Duration::from_secs(100));
    let before = sim.log.len();
    sim.exit(pids[0], Exit::Signal(SIGKILL));
    // Same instant: no backoff for a worker that had been ready.
    assert_eq!(
        sim.since(before, is_spawn),
        [(sim.t(), Action::Spawn { slot: 0 })]
    );
    assert!(
        sim.since(
            before,
            |a| matches!(a, Action::Log(l) if l.contains("signal 9 (SIGKILL)"))
        )
        .len()
            == 1
    );
    let table: Vec<_> = sim.sup.workers().collect();
    assert_eq!(table.iter().find(|w| w.slot == 0).unwrap().restarts, 1);
    assert_eq!(table.iter().find(|w| w.slot == 1).unwrap().restarts, 0);
}

#[test]
fn workers_dying_at_start_back_off_from_1s_growing_to_30s() {
    let mut sim = Sim::new(1, None);
    sim.on_spawn = Some(Exit::Code(1));
    // The first worker was spawned before `on_spawn` was set: it dies now.
    let first = sim.spawned[0].2;
    sim.exit(first, Exit::Code(1));
    sim.advance(Duration::from_secs(600));
    let times: Vec<Duration> = sim.spawned.iter().map(|s| s.0).collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 20, "{gaps:?}");
    for (i, gap) in gaps.iter().enumerate() {
        let want = backoff(i as u32 + 1);
        assert_eq!(*gap, want, "gap {i}");
    }
    assert_eq!(gaps[0], Duration::from_secs(1));
    assert_eq!(gaps[1], Duration::from_millis(1500));
    assert_eq!(gaps[2], Duration::from_millis(2250));
    assert_eq!(*gaps.last().unwrap(), BACKOFF_MAX);
    assert!(
        gaps.windows(2).all(|w| w[0] <= w[1]),
        "the delay never shrinks"
    );
    // Once a worker reports ready the delay resets: the next death respawns at once.
    sim.on_spawn = None;
    sim.advance(BACKOFF_MAX);
    let (_, _, pid) = *sim.spawned.last().unwrap();
    sim.ready(pid);
    let before = sim.log.len();
    sim.exit(pid, Exit::Code(1));
    assert_eq!(sim.since(before, is_spawn).len(), 1);
    let (_, _, pid) = *sim.spawned.last().unwrap();
    // And a death before ready after that starts the curve at 1 s again.
    sim.exit(pid, Exit::Code(1));
    let t = sim.t();
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.spawned.last().unwrap().0 - t, Duration::from_secs(1));
}

#[test]
fn cannot_boot_stops_respawning_and_exits_with_it() {
    let mut sim = Sim::new(2, None);
    let w0 = sim.live()[0].1;
    let w1 = sim.live()[1].1;
    sim.ready(w0);
    let before = sim.log.len();
    sim.exit(w1, Exit::Code(EXIT_CANNOT_BOOT));
    assert!(sim.since(before, is_spawn).is_empty());
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Drain { .. })),
        [(
            sim.t(),
            Action::Drain {
                pid: w0,
                timeout: GRACE
            }
        )]
    );
    assert!(
        sim.since(
            before,
            |a| matches!(a, Action::Log(l) if l.contains("cannot boot"))
        )
        .len()
            == 1
    );
    sim.advance(Duration::from_secs(1));
    sim.exit(w0, Exit::Code(0));
    assert_eq!(
        sim.log.last().unwrap().1,
        Action::Exit(Outcome::CannotBoot { slot: 1, pid: w1 })
    );
    sim.advance(Duration::from_secs(60));
    assert!(sim.since(before, is_spawn).is_empty());
    // Exit code 3 after ready is a crash like any other: respawned.
    let mut sim = Sim::new(1, None);
    let w = sim.all_ready()[0];
    let before = sim.log.len();
    sim.exit(w, Exit::Code(EXIT_CANNOT_BOOT));
    assert_eq!(sim.since(before, is_spawn).len(), 1);
}

#[test]
fn graceful_stop_drains_then_kills_after_the_deadline() {
    let mut sim = Sim::new(2, Some(Duration::from_secs(5)));
    let pids = sim.all_ready();
    let before = sim.log.len();
    sim.signal(libc::SIGTERM);
    assert!(sim.sup.is_stopping());
    let drains = sim.since(before, |a| matches!(a, Action::Drain { .. }));
    assert_eq!(drains.len(), 2);
    for (_, d) in &drains {
        assert!(matches!(d, Action::Drain { timeout, .. } if *timeout == GRACE));
    }
    // One worker finishes; the other hangs. No respawn, no heartbeat kill while draining.
    sim.exit(pids[0], Exit::Code(0));
    sim.advance(GRACE + KILL_GRACE - Duration::from_millis(1));
    assert!(
        sim.since(before, |a| matches!(
            a,
            Action::Kill { .. } | Action::Spawn { .. }
        ))
        .is_empty()
    );
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Kill { .. })),
        [(
            GRACE + KILL_GRACE,
            Action::Kill {
                pid: pids[1],
                signal: SIGKILL
            }
        )]
    );
    assert!(
        sim.since(before, |a| matches!(a, Action::Exit(_)))
            .is_empty()
    );
    sim.exit(pids[1], Exit::Signal(SIGKILL));
    assert_eq!(sim.log.last().unwrap().1, Action::Exit(Outcome::Stopped));
    // A second TERM, or anything else, does nothing more.
    let n = sim.log.len();
    sim.signal(libc::SIGTERM);
    sim.signal(libc::SIGHUP);
    assert_eq!(sim.log.len(), n);
}

#[test]
fn fast_stop_and_quit_during_a_drain_kill_after_one_second() {
    let mut sim = Sim::new(2, None);
    let pids = sim.all_ready();
    let before = sim.log.len();
    sim.signal(libc::SIGQUIT);
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Stop { .. }))
            .len(),
        2
    );
    sim.exit(pids[0], Exit::Code(0));
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Kill { .. })),
        [(
            KILL_GRACE,
            Action::Kill {
                pid: pids[1],
                signal: SIGKILL
            }
        )]
    );
    // TERM then QUIT: the drain becomes a fast stop.
    let mut sim = Sim::new(1, None);
    let pid = sim.all_ready()[0];
    sim.signal(libc::SIGTERM);
    sim.advance(Duration::from_secs(3));
    let before = sim.log.len();
    sim.signal(libc::SIGQUIT);
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Stop { .. })),
        [(sim.t(), Action::Stop { pid })]
    );
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Kill { .. })),
        [(
            Duration::from_secs(4),
            Action::Kill {
                pid,
                signal: SIGKILL
            }
        )]
    );
}

#[test]
fn reload_drains_each_old_worker_only_once_its_replacement_is_ready() {
    let mut sim = Sim::new(2, None);
    let old = sim.all_ready();
    let before = sim.log.len();
    sim.signal(libc::SIGHUP);
    let spawns = sim.since(before, is_spawn);
    assert_eq!(spawns.len(), 2);
    assert!(
        sim.since(before, |a| matches!(a, Action::Drain { .. }))
            .is_empty()
    );
    let new: Vec<(usize, Pid)> = sim.spawned[2..].iter().map(|s| (s.1, s.2)).collect();
    // Time passes, a new worker is slow: nothing is drained meanwhile.
    sim.advance(Duration::from_secs(10));
    assert!(
        sim.since(before, |a| matches!(a, Action::Drain { .. }))
            .is_empty()
    );
    sim.ready(new[1].1);
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Drain { .. })),
        [(
            sim.t(),
            Action::Drain {
                pid: old[1],
                timeout: GRACE
            }
        )]
    );
    sim.ready(new[0].1);
    let drains = sim.since(before, |a| matches!(a, Action::Drain { .. }));
    assert_eq!(drains.len(), 2);
    assert_eq!(
        drains[1].1,
        Action::Drain {
            pid: old[0],
            timeout: GRACE
        }
    );
    assert!(
        sim.since(
            before,
            |a| matches!(a, Action::Log(l) if l.contains("serves on every slot"))
        )
        .len()
            == 1
    );
    // The old ones exiting is expected: no respawn.
    let n = sim.spawned.len();
    sim.exit(old[0], Exit::Code(0));
    sim.exit(old[1], Exit::Code(0));
    assert_eq!(sim.spawned.len(), n);
    assert_eq!(sim.sup.generation(), 1);
    assert!(sim.live().iter().all(|w| w.2 == WorkerState::Ready));
}

#[test]
fn a_reload_whose_new_workers_cannot_boot_keeps_the_old_ones() {
    let mut sim = Sim::new(2, None);
    let old = sim.all_ready();
    sim.signal(libc::SIGHUP);
    let new: Vec<Pid> = sim.spawned[2..].iter().map(|s| s.2).collect();
    let before = sim.log.len();
    sim.exit(new[0], Exit::Code(EXIT_CANNOT_BOOT));
    assert!(!sim.sup.is_stopping());
    assert!(
        sim.since(before, |a| matches!(
            a,
            Action::Drain { .. } | Action::Exit(_)
        ))
        .is_empty()
    );
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Stop { .. })),
        [(sim.t(), Action::Stop { pid: new[1] })]
    );
    assert!(
        sim.since(
            before,
            |a| matches!(a, Action::Log(l) if l.contains("reload failed"))
        )
        .len()
            == 1
    );
    sim.exit(new[1], Exit::Code(0));
    sim.advance(Duration::from_secs(120));
    // No churn: the old workers serve on, nothing else starts.
    assert!(sim.since(before, is_spawn).is_empty());
    let live: Vec<Pid> = sim.live().iter().map(|w| w.1).collect();
    assert_eq!(live, old);
    // A later HUP tries again.
    sim.signal(libc::SIGHUP);
    assert_eq!(sim.since(before, is_spawn).len(), 2);
}

#[test]
fn ttin_and_ttou_add_and_drain_one_worker() {
    let mut sim = Sim::new(2, None);
    let pids = sim.all_ready();
    let before = sim.log.len();
    sim.signal(libc::SIGTTIN);
    assert_eq!(
        sim.since(before, is_spawn),
        [(sim.t(), Action::Spawn { slot: 2 })]
    );
    assert_eq!(sim.sup.target(), 3);
    let third = sim.spawned.last().unwrap().2;
    sim.ready(third);
    sim.signal(libc::SIGTTOU);
    sim.signal(libc::SIGTTOU);
    assert_eq!(sim.sup.target(), 1);
    let drained: Vec<Pid> = sim
        .since(before, |a| matches!(a, Action::Drain { .. }))
        .into_iter()
        .map(|(_, a)| match a {
            Action::Drain { pid, .. } => pid,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(drained, [third, pids[1]]);
    // Never below one worker, and the drained ones are not replaced when they exit.
    sim.signal(libc::SIGTTOU);
    assert_eq!(sim.sup.target(), 1);
    let n = sim.spawned.len();
    sim.exit(third, Exit::Code(0));
    sim.exit(pids[1], Exit::Code(0));
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.spawned.len(), n);
    assert_eq!(sim.live().len(), 1);
}

#[test]
fn a_silent_worker_is_killed_after_the_worker_timeout_and_replaced() {
    let timeout = Duration::from_secs(10);
    let mut sim = Sim::new(1, Some(timeout));
    let pid = sim.all_ready()[0];
    // Heartbeats keep it alive for a long time.
    for _ in 0..30 {
        sim.advance(Duration::from_secs(1));
        sim.sup.handle_heartbeat(pid, Default::default(), sim.now);
    }
    let before = sim.log.len();
    sim.advance(timeout - Duration::from_millis(1));
    assert!(
        sim.since(before, |a| matches!(a, Action::Kill { .. }))
            .is_empty()
    );
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Kill { .. })),
        [(
            Duration::from_secs(40),
            Action::Kill {
                pid,
                signal: SIGKILL
            }
        )]
    );
    // Its replacement starts at once (it had been ready), before the old one is reaped.
    assert_eq!(sim.since(before, is_spawn).len(), 1);
    sim.exit(pid, Exit::Signal(SIGKILL));
    assert_eq!(sim.since(before, is_spawn).len(), 1);
    // A worker that never reports ready is killed at the same timeout, and its slot backs off.
    let new = sim.spawned.last().unwrap().2;
    let before = sim.log.len();
    sim.advance(timeout);
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Kill { .. }))
            .last()
            .unwrap()
            .1,
        Action::Kill {
            pid: new,
            signal: SIGKILL
        }
    );
    sim.exit(new, Exit::Signal(SIGKILL));
    assert!(sim.since(before, is_spawn).is_empty());
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.since(before, is_spawn).len(), 1);
}

#[test]
fn an_upgrade_drains_the_old_workers_only_when_the_new_master_is_ready() {
    let mut sim = Sim::new(2, None);
    let old = sim.all_ready();
    let before = sim.log.len();
    sim.signal(libc::SIGUSR2);
    assert_eq!(sim.since(before, |a| *a == Action::Upgrade).len(), 1);
    let new_master = sim.next_pid;
    // A second USR2 meanwhile is refused.
    sim.signal(libc::SIGUSR2);
    assert_eq!(sim.since(before, |a| *a == Action::Upgrade).len(), 1);
    sim.advance(Duration::from_secs(5));
    assert!(
        sim.since(before, |a| matches!(a, Action::Drain { .. }))
            .is_empty()
    );
    sim.sup.handle_upgrade_ready(sim.now);
    sim.pump();
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Drain { .. }))
            .len(),
        2
    );
    // The new master is not this one's to stop.
    assert!(
        sim.since(
            before,
            |a| matches!(a, Action::Kill { pid, .. } if *pid == new_master)
        )
        .is_empty()
    );
    for p in old {
        sim.exit(p, Exit::Code(0));
    }
    assert_eq!(sim.log.last().unwrap().1, Action::Exit(Outcome::Upgraded));
}

#[test]
fn a_failed_upgrade_leaves_the_old_master_serving() {
    let mut sim = Sim::new(1, None);
    sim.all_ready();
    // The new master dies before it is ready.
    sim.signal(libc::SIGUSR2);
    let new_master = sim.next_pid;
    let before = sim.log.len();
    sim.exit(new_master, Exit::Code(1));
    assert!(!sim.sup.is_stopping());
    assert!(
        sim.since(
            before,
            |a| matches!(a, Action::Log(l) if l.contains("upgrade failed"))
        )
        .len()
            == 1
    );
    assert!(
        sim.since(before, |a| matches!(a, Action::Drain { .. }))
            .is_empty()
    );
    // It hangs: stopped after the upgrade timeout; then another USR2 is accepted.
    sim.signal(libc::SIGUSR2);
    let hung = sim.next_pid;
    let before = sim.log.len();
    sim.advance(UPGRADE_TIMEOUT);
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Kill { .. })),
        [(
            sim.t(),
            Action::Kill {
                pid: hung,
                signal: libc::SIGTERM
            }
        )]
    );
    sim.signal(libc::SIGUSR2);
    assert_eq!(sim.since(before, |a| *a == Action::Upgrade).len(), 1);
    // Spawning it can fail too.
    let mut sim = Sim::new(1, None);
    sim.all_ready();
    sim.sup.handle_signal(libc::SIGUSR2, sim.now);
    assert_eq!(sim.sup.poll_action(), Some(Action::Upgrade));
    sim.sup.handle_upgrade_failed("ENOENT", sim.now);
    sim.pump();
    assert!(!sim.sup.is_stopping());
    assert!(matches!(&sim.log.last().unwrap().1, Action::Log(l) if l.contains("ENOENT")));
}

#[test]
fn stopping_during_an_upgrade_stops_the_new_master_too() {
    let mut sim = Sim::new(1, None);
    let pid = sim.all_ready()[0];
    sim.signal(libc::SIGUSR2);
    let new_master = sim.next_pid;
    let before = sim.log.len();
    sim.signal(libc::SIGTERM);
    assert_eq!(
        sim.since(before, |a| matches!(a, Action::Kill { .. })),
        [(
            sim.t(),
            Action::Kill {
                pid: new_master,
                signal: libc::SIGTERM
            }
        )]
    );
    sim.exit(pid, Exit::Code(0));
    assert!(
        sim.since(before, |a| matches!(a, Action::Exit(_)))
            .is_empty(),
        "waits for it"
    );
    sim.exit(new_master, Exit::Code(0));
    assert_eq!(sim.log.last().unwrap().1, Action::Exit(Outcome::Stopped));
}

#[test]
fn strangers_and_late_messages_change_nothing() {
    let mut sim = Sim::new(1, Some(Duration::from_secs(5)));
    let pid = sim.all_ready()[0];
    let n = sim.log.len();
    sim.exit(9999, Exit::Code(0));
    sim.ready(9999);
    sim.sup.handle_heartbeat(9999, Default::default(), sim.now);
    sim.ready(pid);
    sim.signal(libc::SIGUSR1);
    assert_eq!(sim.log.len(), n);
    // A bad message gets the worker killed and replaced.
    sim.sup.handle_bad_message(pid, "hello", sim.now);
    sim.pump();
    assert!(
        sim.since(n, |a| *a
            == Action::Kill {
                pid,
                signal: SIGKILL
            })
        .len()
            == 1
    );
    assert_eq!(sim.since(n, is_spawn).len(), 1);
}
