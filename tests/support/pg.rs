//! PostgreSQL clusters for tests: `initdb` in a temporary directory, the
//! server started on a free loopback port as a child of this process, and
//! stopped when the test process ends, however it ends.
//!
//! Uses the PostgreSQL binaries of the machine (`pg_config --bindir`, or
//! `/usr/lib/postgresql/*/bin`); `.ci/run` installs `postgresql-15` where
//! it is missing. As root (CI), the server runs as the `postgres` user,
//! since PostgreSQL refuses to run as root.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the PostgreSQL programs are.
pub fn bindir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join("initdb").exists() {
                return dir;
            }
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().join("bin"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
            .pop()
            .filter(|d| d.join("initdb").exists())
            .expect("PostgreSQL server programs (install postgresql-15; .ci/run does)")
    })
    .clone()
}

/// The user the server runs as: `postgres` when this process is root.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid reads this process's effective user id, nothing else.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    Some((id("-u"), id("-g")))
}

fn command(program: &str) -> Command {
    let mut c = Command::new(bindir().join(program));
    if let Some((uid, gid)) = run_as() {
        use std::os::unix::process::CommandExt;
        c.uid(uid).gid(gid);
    }
    c
}

fn own(path: &Path) {
    if let Some((uid, gid)) = run_as() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Starts servers from one thread that lives as long as the process: a
/// server is told to quit (SIGQUIT, an immediate shutdown) when the thread
/// that started it ends, and test threads end after each test.
fn spawn(cmd: Command) -> Child {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut cmd, back) in rx {
                use std::os::unix::process::CommandExt;
                // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a signal for
                // this child; it is async-signal-safe.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                        Ok(())
                    });
                }
                let _ = back.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (back, child) = mpsc::channel();
    spawner.lock().unwrap().send((cmd, back)).unwrap();
    child.recv().unwrap().unwrap()
}

/// A running cluster.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Cluster {
    /// A new primary (`name` tells the directories apart). `wal_level`
    /// replica, so a standby can follow it.
    pub fn start(name: &str) -> Cluster {
        remove_stale();
        let dir = std::env::temp_dir().join(format!(
            "clubswitch-pg-{name}-{}-{}",
            std::process::id(),
            next()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        own(&dir);
        let data = dir.join("data");
        let out = command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let mut c = Cluster {
            dir,
            port: free_port(),
            child: None,
        };
        c.run();
        c
    }

    /// A streaming standby of `primary`, made with `pg_basebackup -R`; the
    /// primary makes it synchronous (`synchronous_standby_names`).
    pub fn standby_of(primary: &Cluster, name: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "clubswitch-pg-{name}-{}-{}",
            std::process::id(),
            next()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        own(&dir);
        let data = dir.join("data");
        let out = command("pg_basebackup")
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
            .args(["-U", "postgres", "-R", "-X", "stream", "--checkpoint=fast"])
            .arg(format!("--dbname=application_name={name}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The standby names itself to the primary.
        let auto = data.join("postgresql.auto.conf");
        let text = std::fs::read_to_string(&auto).unwrap();
        let text = text.replace(
            "primary_conninfo = '",
            &format!("primary_conninfo = 'application_name={name} "),
        );
        std::fs::write(&auto, text).unwrap();
        let mut c = Cluster {
            dir,
            port: free_port(),
            child: None,
        };
        c.run();
        primary.sql(
            "postgres",
            &format!("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ({name})'"),
        );
        primary.sql("postgres", "SELECT pg_reload_conf()");
        c
    }

    /// Starts the server on a port free a moment ago. Another process may
    /// take that port first (PostgreSQL cannot be told to pick one), so a
    /// server that exits before it is ready is started again on another.
    fn run(&mut self) {
        for _ in 0..5 {
            if self.try_run() {
                return;
            }
            self.port = free_port();
        }
        panic!("PostgreSQL in {} did not start", self.dir.display());
    }

    /// Whether the server came up on `self.port` (false if it exited).
    fn try_run(&mut self) -> bool {
        let data = self.dir.join("data");
        let mut cmd = command("postgres");
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "wal_level=replica", "-c", "max_wal_senders=10"])
            .args(["-c", "max_connections=200", "-c", "hot_standby=on"])
            .args([
                "-c",
                "logging_collector=off",
                "-c",
                "log_min_messages=fatal",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = self.child.insert(spawn(cmd));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            // Checked after pg_isready: a ready answer from whoever holds
            // the port counts only if our server is still running.
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return false;
            }
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL in {} did not start", self.dir.display());
    }

    /// A URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` in database `db` with psql; returns its output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new, empty database; returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// Stops the server at once, as a crash or a pulled cable would
    /// (`pg_ctl stop -m immediate`).
    pub fn stop_immediate(&mut self) {
        let _ = command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .status();
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Makes a standby the primary.
    pub fn promote(&self) {
        let status = command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["promote", "-w"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl promote");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGQUIT: an immediate shutdown; nothing of a test is kept.
            // SAFETY: kill sends a signal to our own child process.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGQUIT);
            }
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the clusters of test processes that are gone (a process killed
/// before its clusters' directories were removed).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("clubswitch-pg-") else {
            continue;
        };
        let pid = rest
            .split('-')
            .rev()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn next() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One cluster for every test of this process, started on first use.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::start("shared"))
}

/// A new database on the shared cluster; its URL.
pub fn fresh_database() -> String {
    shared().database(&format!("d{}_{}", std::process::id(), next()))
}

/// A fresh schema of the shared cluster for one test: the URL of its
/// database with that schema first on the search path.
pub fn fresh_url() -> String {
    let cluster = shared();
    let schema = format!("t{}_{}", std::process::id(), next());
    cluster.sql("postgres", &format!("CREATE SCHEMA {schema}"));
    format!(
        "{}?options=-c%20search_path%3D{schema}",
        cluster.url("postgres")
    )
}
