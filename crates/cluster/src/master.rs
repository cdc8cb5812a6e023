//! The master's driver: the I/O around the [`Supervisor`]. It opens the listening socket,
//! spawns workers (this executable, opened at start, with a socketpair at fd 3), sends each
//! the socket with `write2(".")`, reads their pipes (ready, heartbeats), reaps exits, turns
//! signals into supervisor inputs, and carries out the supervisor's actions.
//!
//! Each wake-up runs the unicorn loop's steps in this order: signals, pipe messages, exits
//! (so a worker's last message counts before its death), timers (one loop turn after they
//! fire, so that messages that arrived meanwhile, say while the master was stopped with
//! `SIGSTOP`, are read before a heartbeat is judged late), actions, writes, status clients.

use std::fs;
use std::future::{Future, poll_fn};
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::process::Command;
use std::task::{Context, Poll};
use std::time::Instant;

use uvlite::{Pipe, Process, Signal, Sleep, TcpListener, TcpStream, spawn_local, timeout};

use crate::listen::{self, Source, UpgradeFds};
use crate::protocol::{Decoder, Message, ProtocolError};
use crate::status;
use crate::supervisor::{Action, Exit, Outcome, Policy, Supervisor};
use crate::{Config, Error, UPGRADE_ENV, WORKER_ENV};

/// The master's signals; `SIGUSR1` prints the status table, the others go to the supervisor.
const SIGNALS: [i32; 8] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

pub(crate) fn run(config: &Config) -> Result<(), Error> {
    let lp = uvlite::Loop::new()?;
    let outcome = lp.block_on(async {
        let mut driver = Driver::start(config)?;
        poll_fn(|cx| driver.poll(cx)).await
    })?;
    match outcome {
        Outcome::Stopped | Outcome::Upgraded => Ok(()),
        Outcome::CannotBoot { slot, pid } => Err(Error::CannotBoot { slot, pid }),
    }
}

/// One end of a pipe, with its message decoder and its unsent bytes.
struct Link {
    pipe: Pipe,
    decoder: Decoder,
    outbox: Vec<u8>,
    eof: bool,
}

impl Link {
    fn new(pipe: Pipe) -> Link {
        Link {
            pipe,
            decoder: Decoder::default(),
            outbox: Vec::new(),
            eof: false,
        }
    }

    fn send(&mut self, msg: Message) {
        if !self.eof {
            msg.encode(&mut self.outbox);
        }
    }

    /// Reads what has arrived and returns the messages in it.
    fn poll_messages(&mut self, cx: &mut Context<'_>) -> Vec<Result<Message, ProtocolError>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !self.eof {
            match self.pipe.poll_read(cx, &mut buf) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.eof = true;
                    self.outbox.clear();
                }
                Poll::Ready(Ok(n)) => self.decoder.push(&buf[..n]),
            }
            while let Some(m) = self.decoder.next() {
                out.push(m);
            }
            // A peer has no business sending fds: close any.
            while self.pipe.accept_pending().is_some() {}
        }
        out
    }

    /// Writes what it can of the outbox.
    fn poll_flush(&mut self, cx: &mut Context<'_>) {
        while !self.outbox.is_empty() && !self.eof {
            let res = pin!(self.pipe.write(&self.outbox)).poll(cx);
            match res {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.outbox.drain(..n);
                }
                // The peer is gone: its exit (or EOF) tells the rest.
                Poll::Ready(_) => self.outbox.clear(),
                Poll::Pending => break,
            }
        }
    }
}

struct Child {
    slot: usize,
    pid: u32,
    process: Process,
    link: Link,
    /// The listening socket went out (it must precede every other message).
    handle_sent: bool,
}

struct NewMaster {
    pid: u32,
    process: Process,
    link: Link,
}

struct Driver<'a> {
    config: &'a Config,
    name: String,
    sup: Supervisor,
    listener: TcpListener,
    status: Option<TcpListener>,
    /// The old master, when this one was started by a binary upgrade.
    parent: Option<Link>,
    children: Vec<Child>,
    new_master: Option<NewMaster>,
    signals: Vec<Signal>,
    timer: Option<Sleep>,
    timer_due: bool,
    started: Instant,
    /// The executable on disk, for a binary upgrade (workers run `image`).
    exe: PathBuf,
    /// The master's own executable, opened at start: workers run this very file even if the
    /// one on disk was replaced meanwhile (a new binary comes in through SIGUSR2, not through
    /// a respawn). Spawned through `/proc/self/fd/N`, which also works under valgrind, whose
    /// `/proc/self/exe` is its own launcher but whose `open("/proc/self/exe")` is the program.
    image: Option<std::fs::File>,
}

impl<'a> Driver<'a> {
    fn start(config: &'a Config) -> Result<Driver<'a>, Error> {
        let name = program_name();
        let exe = uvlite::exepath()?;
        let opened = listen::open(config)?;
        let addr = opened.listener.local_addr()?;
        let from = match opened.source {
            Source::Bound => "bound",
            Source::Systemd => "from systemd (LISTEN_FDS)",
            Source::Upgrade => "inherited from the old master (upgrade)",
        };
        eprintln!(
            "{name}: master pid {} on {addr} ({from})",
            std::process::id()
        );
        if config.reuseport && opened.source == Source::Systemd {
            eprintln!("{name}: --reuseport is ignored with a socket from systemd");
        }
        let status = match (opened.status, config.status) {
            (Some(s), _) => Some(s),
            (None, Some(addr)) => {
                let s = TcpListener::bind(addr)
                    .and_then(|s| s.listen(64).map(|()| s))
                    .map_err(|source| Error::Bind { addr, source })?;
                Some(s)
            }
            (None, None) => None,
        };
        let signals = SIGNALS
            .iter()
            .map(|&s| Signal::new(s))
            .collect::<io::Result<_>>()?;
        let policy = Policy {
            workers: config.workers,
            graceful_timeout: config.graceful_timeout,
            worker_timeout: config.worker_timeout,
        };
        let now = Instant::now();
        Ok(Driver {
            config,
            name,
            sup: Supervisor::new(policy, now),
            listener: opened.listener,
            status,
            parent: opened.parent.map(Link::new),
            children: Vec::new(),
            new_master: None,
            signals,
            timer: None,
            timer_due: false,
            started: now,
            exe,
            image: std::fs::File::open("/proc/self/exe").ok(),
        })
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Outcome, Error>> {
        // Signals.
        for i in 0..self.signals.len() {
            if self.signals[i].poll_recv(cx).is_ready() {
                let signum = self.signals[i].signum();
                if signum == libc::SIGUSR1 {
                    eprint!("{}", self.table());
                } else {
                    self.sup.handle_signal(signum, Instant::now());
                }
            }
        }
        // Pipe messages.
        for c in &mut self.children {
            for m in c.link.poll_messages(cx) {
                let now = Instant::now();
                match m {
                    Ok(Message::Ready) => self.sup.handle_ready(c.pid, now),
                    Ok(Message::Beat(counters)) => {
                        self.sup.handle_heartbeat(c.pid, counters, now);
                    }
                    Ok(other) => {
                        self.sup
                            .handle_bad_message(c.pid, &format!("{other:?}"), now);
                        break;
                    }
                    Err(e) => {
                        self.sup.handle_bad_message(c.pid, &e.to_string(), now);
                        break;
                    }
                }
            }
        }
        if let Some(nm) = &mut self.new_master {
            for m in nm.link.poll_messages(cx) {
                if m == Ok(Message::Ready) {
                    self.sup.handle_upgrade_ready(Instant::now());
                }
            }
        }
        if let Some(p) = &mut self.parent {
            // The old master only ever closes its end (when it exits).
            let _ = p.poll_messages(cx);
        }
        // Exits.
        let mut i = 0;
        while i < self.children.len() {
            if let Poll::Ready(status) = self.children[i].process.poll_wait(cx) {
                let c = self.children.swap_remove(i);
                let exit = status.map_or(Exit::Code(-1), Exit::from);
                self.sup.handle_exit(c.pid, exit, Instant::now());
            } else {
                i += 1;
            }
        }
        if let Some(nm) = &mut self.new_master
            && let Poll::Ready(status) = nm.process.poll_wait(cx)
        {
            let exit = status.map_or(Exit::Code(-1), Exit::from);
            let pid = nm.pid;
            self.new_master = None;
            self.sup.handle_exit(pid, exit, Instant::now());
        }
        // Timers, one turn after they fire.
        if self.timer_due {
            self.timer_due = false;
            self.sup.handle_timeout(Instant::now());
        }
        // Actions.
        while let Some(action) = self.sup.poll_action() {
            if let Some(outcome) = self.act(action) {
                self.remove_pid_file();
                return Poll::Ready(Ok(outcome));
            }
        }
        // Writes.
        for c in &mut self.children {
            if !c.handle_sent {
                // The seed's write2(pipe, ".", server): one byte carries the socket.
                let res = pin!(c.link.pipe.write2(b".", self.listener.as_fd())).poll(cx);
                match res {
                    Poll::Ready(Ok(())) => c.handle_sent = true,
                    Poll::Ready(Err(e)) => {
                        eprintln!(
                            "{}: worker {} pid {}: cannot send the socket: {e}",
                            self.name, c.slot, c.pid
                        );
                        c.link.eof = true;
                        c.handle_sent = true;
                    }
                    Poll::Pending => continue,
                }
            }
            c.link.poll_flush(cx);
        }
        if let Some(p) = &mut self.parent {
            p.poll_flush(cx);
        }
        // Status clients.
        if let Some(s) = &self.status {
            while let Poll::Ready(res) = s.poll_accept(cx) {
                match res {
                    Ok((stream, _)) => {
                        let table = self.table();
                        let body = status::response(&table, self.sup.is_stopping());
                        spawn_local(serve_status(stream, body)).detach();
                    }
                    Err(_) => break,
                }
            }
        }
        // Sleep until the next deadline.
        match self.sup.poll_timeout() {
            Some(at) => {
                let timer = self.timer.get_or_insert_with(|| Sleep::new(at));
                if timer.deadline() != at {
                    timer.reset(at);
                }
                if Pin::new(timer).poll(cx).is_ready() {
                    self.timer_due = true;
                    cx.waker().wake_by_ref();
                }
            }
            None => self.timer = None,
        }
        Poll::Pending
    }

    /// Carries out one action; `Some` when the master must stop.
    fn act(&mut self, action: Action) -> Option<Outcome> {
        let now = Instant::now();
        match action {
            Action::Spawn { slot } => match self.spawn_worker(slot) {
                Ok(child) => {
                    println!("worker {slot} pid {}", child.pid);
                    let pid = child.pid;
                    self.children.push(child);
                    self.sup.handle_spawned(slot, pid, now);
                }
                Err(e) => self.sup.handle_spawn_failed(slot, &e.to_string(), now),
            },
            Action::Drain { pid, timeout } => {
                if let Some(c) = self.children.iter_mut().find(|c| c.pid == pid) {
                    c.link.send(Message::Drain(timeout));
                }
            }
            Action::Stop { pid } => {
                if let Some(c) = self.children.iter_mut().find(|c| c.pid == pid) {
                    c.link.send(Message::Stop);
                }
            }
            Action::Kill { pid, signal } => {
                if let Some(c) = self.children.iter().find(|c| c.pid == pid) {
                    let _ = c.process.kill(signal);
                } else if let Some(nm) = self.new_master.as_ref().filter(|n| n.pid == pid) {
                    let _ = nm.process.kill(signal);
                }
            }
            Action::Upgrade => match self.spawn_new_master() {
                Ok(nm) => {
                    let pid = nm.pid;
                    self.new_master = Some(nm);
                    self.sup.handle_upgrade_spawned(pid, now);
                }
                Err(e) => self.sup.handle_upgrade_failed(&e.to_string(), now),
            },
            Action::Ready => {
                if let Some(path) = &self.config.pid_file
                    && let Err(e) = write_pid_file(path)
                {
                    eprintln!("{}: cannot write {}: {e}", self.name, path.display());
                }
                if let Some(p) = &mut self.parent {
                    p.send(Message::Ready);
                }
            }
            Action::Log(line) => eprintln!("{}: {line}", self.name),
            Action::Exit(outcome) => return Some(outcome),
        }
        None
    }

    fn spawn_worker(&self, slot: usize) -> io::Result<Child> {
        let (pipe, child_end) = Pipe::socketpair()?;
        // The master's own binary, even if the file on disk was replaced meanwhile.
        let mut cmd = match &self.image {
            Some(f) => Command::new(format!("/proc/self/fd/{}", f.as_raw_fd())),
            None => Command::new(&self.exe),
        };
        if let Some(arg0) = std::env::args_os().next() {
            cmd.arg0(arg0);
        }
        cmd.args(&self.config.worker_args)
            .env(WORKER_ENV, slot.to_string());
        let process = Process::spawn(&mut cmd, &[child_end.as_fd()])?;
        drop(child_end);
        Ok(Child {
            slot,
            pid: process.pid(),
            process,
            link: Link::new(pipe),
            handle_sent: false,
        })
    }

    /// Starts the executable on disk as a new master with the listening socket (and the
    /// status socket) inherited and a pipe to report back on.
    fn spawn_new_master(&self) -> io::Result<NewMaster> {
        let (pipe, child_end) = Pipe::socketpair()?;
        let mut fds: Vec<BorrowedFd<'_>> = vec![self.listener.as_fd(), child_end.as_fd()];
        if let Some(s) = &self.status {
            fds.push(s.as_fd());
        }
        let spec = UpgradeFds {
            listener: 3,
            parent: 4,
            status: self.status.as_ref().map(|_| 5),
        };
        let mut cmd = Command::new(&self.exe);
        let mut args = std::env::args_os();
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        cmd.args(args)
            .env(UPGRADE_ENV, spec.format())
            .env_remove(WORKER_ENV);
        let process = Process::spawn(&mut cmd, &fds)?;
        drop(child_end);
        Ok(NewMaster {
            pid: process.pid(),
            process,
            link: Link::new(pipe),
        })
    }

    fn table(&self) -> String {
        status::render(&self.sup, self.started, Instant::now())
    }

    fn remove_pid_file(&self) {
        let Some(path) = &self.config.pid_file else {
            return;
        };
        // After an upgrade the file names the new master: leave it.
        let ours =
            fs::read_to_string(path).is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes this process's pid to `path` atomically (a temporary file renamed over it).
fn write_pid_file(path: &Path) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, format!("{}\n", std::process::id()))?;
    fs::rename(&tmp, path)
}

/// The file name this program was started as, for log lines.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "cluster".to_owned())
}

/// Answers one status client: reads its request head (any path), sends the table, closes.
async fn serve_status(stream: TcpStream, response: Vec<u8>) {
    let mut buf = vec![0u8; status::MAX_REQUEST];
    let mut n = 0;
    let head = async {
        loop {
            let k = stream.read(&mut buf[n..]).await?;
            n += k;
            if k == 0 || n == buf.len() || buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                return io::Result::Ok(());
            }
        }
    };
    if !matches!(timeout(status::REQUEST_TIMEOUT, head).await, Ok(Ok(()))) {
        return;
    }
    let _ = timeout(status::REQUEST_TIMEOUT, stream.write_all(&response)).await;
    let _ = stream.shutdown(Shutdown::Write);
}
