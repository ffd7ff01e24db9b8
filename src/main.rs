//! The rckpt command line: parse, call the library, map errors to exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use rckpt::archive::{self, PrivateDir};
use rckpt::exit::Exit;
use rckpt::progress::{self, Bar, human_bytes};
use rckpt::sys::Pid;
use rckpt::{dump, restore, show};

#[derive(Parser)]
#[command(
    name = "rckpt",
    version,
    about = "Checkpoint and restore Linux process trees from user space",
    after_help = "Examples:\n  rckpt dump -t 1234 -D /tmp/img\n  rckpt restore -D /tmp/img\n  rckpt show -D /tmp/img\n  rckpt completions bash > /etc/bash_completion.d/rckpt\n\nExit codes: 0 done, 64 bad command line, 65 damaged image, 66 no image, 67 no such\nprocess, 69 refused, 70 failed, 75 timed out, 77 not permitted, 78 machine differs\n(see the README); `rckpt restore` passes the restored process's status through."
)]
struct Cli {
    /// More output on stderr: -v what was done and how long it took, -vv each step.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Also write the log, every step with its time, to FILE (created 0600).
    #[arg(long, value_name = "FILE", global = true)]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Freeze a running process and save it to an image directory or archive.
    #[command(after_help = "Examples:
  rckpt dump -t 1234 -D /tmp/img
  rckpt dump -t 1234 -D /tmp/img --leave-running
  rckpt dump -t 1234 --archive /srv/ckpt/job.rckpt
  rckpt dump -t 1234 --archive - | ssh host rckpt restore --archive -

A dump that runs for more than a second shows its progress when stderr is a terminal.")]
    Dump {
        /// The process to dump.
        #[arg(short = 't', long = "tree", value_name = "PID")]
        pid: i32,
        /// Image directory (created 0700; must not hold an image yet).
        #[arg(
            short = 'D',
            long = "images-dir",
            value_name = "DIR",
            required_unless_present = "archive",
            conflicts_with = "archive"
        )]
        dir: Option<PathBuf>,
        /// Write the image as one compressed, checksummed file instead (`-`: to
        /// stdout). The file must not exist; it appears only once complete.
        #[arg(long, value_name = "FILE")]
        archive: Option<PathBuf>,
        /// Build on a pre-dump (`rckpt pre-dump`): save only the pages written since;
        /// restore reads the others from it, so keep that directory.
        #[arg(long, value_name = "DIR")]
        prev_images_dir: Option<PathBuf>,
        /// Resume the process after the dump instead of killing it.
        #[arg(short = 'R', long)]
        leave_running: bool,
        /// Save established TCP connections, to restore them with TCP_REPAIR.
        #[arg(long)]
        tcp_established: bool,
        /// Save file locks (flock, POSIX, OFD); without it a held lock refuses the dump.
        #[arg(long)]
        file_locks: bool,
        /// Save unix sockets connected to a peer outside the tree, to bind at
        /// restore with --inherit-fd; without it they refuse the dump.
        #[arg(long)]
        ext_unix_sk: bool,
        /// Largest deleted-but-open file whose content is saved (K, M, G suffixes).
        #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
        ghost_limit: u64,
        /// Accepted for CRIU's scripts: deleted-but-open files are always saved by
        /// their content (up to --ghost-limit) and come back unlinked.
        #[arg(long)]
        link_remap: bool,
    },
    /// Bring a dumped process back, with its pid, continuing where it stopped.
    #[command(after_help = "Examples:
  rckpt restore -D /tmp/img
  rckpt restore -D /tmp/img --inherit-fd 'fd[1]:pipe:[12345]'
  rckpt restore -D /tmp/img --shell-job --detach
  rckpt restore --archive /srv/ckpt/job.rckpt --detach
  ssh host rckpt dump -t 1234 --archive - | rckpt restore --archive - --detach

An archive is unpacked into a private directory in $TMPDIR and checked in full
(checksums, names) before anything is restored; the directory is removed after.")]
    Restore {
        /// Image directory written by `rckpt dump`.
        #[arg(
            short = 'D',
            long = "images-dir",
            value_name = "DIR",
            required_unless_present = "archive",
            conflicts_with = "archive"
        )]
        dir: Option<PathBuf>,
        /// Restore from an archive written by `rckpt dump --archive` (`-`: from stdin).
        #[arg(long, value_name = "FILE")]
        archive: Option<PathBuf>,
        /// Return once the process runs, instead of waiting for it and passing its
        /// exit status through.
        #[arg(short, long)]
        detach: bool,
        /// Serve the external resource KEY (as `rckpt dump` and `rckpt show` name
        /// it, e.g. pipe:[12345]) with rckpt's own fd N: `fd[N]:KEY`.
        #[arg(long = "inherit-fd", value_name = "fd[N]:KEY")]
        inherit_fd: Vec<String>,
        /// Bind the image's terminal, session and process group to rckpt's own.
        #[arg(short = 'j', long)]
        shell_job: bool,
    },
    /// Print what an image holds (tasks, threads, memory, files, signals), or what
    /// differs between two.
    #[command(after_help = "Examples:
  rckpt show -D /tmp/img
  rckpt show -D /tmp/img --json | jq '.tasks[] | {pid, comm, saved: .mm.saved_bytes}'
  rckpt show --archive job.rckpt
  rckpt show --diff /tmp/img.1 /tmp/img.2
  rckpt show --diff /tmp/img.1 job.rckpt --json | jq .identical

--diff takes image directories or archives. The JSON documents carry `schema`
(now 1): keys are only ever added; addresses and masks are hex strings.")]
    Show {
        /// Image directory.
        #[arg(
            short = 'D',
            long = "images-dir",
            value_name = "DIR",
            required_unless_present_any = ["archive", "diff"],
            conflicts_with_all = ["archive", "diff"]
        )]
        dir: Option<PathBuf>,
        /// An archive written by `rckpt dump --archive` (`-`: from stdin).
        #[arg(long, value_name = "FILE", conflicts_with = "diff")]
        archive: Option<PathBuf>,
        /// Compare two images (directories or archives).
        #[arg(long, num_args = 2, value_names = ["A", "B"])]
        diff: Option<Vec<PathBuf>>,
        /// A JSON document for programs instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Probe each kernel feature rckpt relies on.
    #[command(after_help = "Example:\n  rckpt check\n\nExits 78 when a feature is missing.")]
    Check,
    /// Start a built-in workload, checkpoint it, kill it, restore it, and show it
    /// continuing from where it was.
    #[command(after_help = "Example:\n  sudo rckpt demo")]
    Demo,
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  rckpt completions bash > /etc/bash_completion.d/rckpt
  rckpt completions zsh > \"${fpath[1]}/_rckpt\"
  rckpt completions fish > ~/.config/fish/completions/rckpt.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Save a running tree's memory and track what it writes from then on, so
    /// that a later `dump --prev-images-dir` freezes it only to save what changed.
    #[command(
        name = "pre-dump",
        after_help = "Example:\n  rckpt pre-dump -t 1234 -D /tmp/pre\n  rckpt dump -t 1234 -D /tmp/img --prev-images-dir /tmp/pre\n  rckpt restore -D /tmp/img      # reads /tmp/pre too: keep it"
    )]
    PreDump {
        /// The process to pre-dump (with its descendants).
        #[arg(short = 't', long = "tree", value_name = "PID")]
        pid: i32,
        /// Directory for the pre-dump (created 0700).
        #[arg(short = 'D', long = "images-dir", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run a command as the init of fresh PID, UTS, IPC and network namespaces,
    /// ready to be snapshotted (its restores get fresh namespaces too).
    #[command(
        after_help = "Example:\n  rckpt run -- redis-server --port 6379 &\n  rckpt dump -t <the pid it prints> -D /tmp/img"
    )]
    Run {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    #[command(hide = true, name = "demo-workload")]
    DemoWorkload,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Usage.code() } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let log_file = match &cli.log_file {
        None => None,
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            // Never through a symlink (rckpt often runs as root).
            match std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
            {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!("rckpt: failed to open the log file {}: {e}", p.display());
                    return ExitCode::from(Exit::Usage.code());
                }
            }
        }
    };
    progress::init_log(cli.verbose, log_file);
    let code = match cli.cmd {
        Cmd::Dump {
            pid,
            dir,
            archive,
            leave_running,
            tcp_established,
            file_locks,
            ext_unix_sk,
            ghost_limit,
            prev_images_dir,
            ..
        } => {
            let files = dump::FileOptions { tcp_established, file_locks, ext_unix_sk, ghost_limit };
            let opts = dump::DumpOptions {
                pid: Pid::from_raw(pid),
                dir: dir.unwrap_or_default(),
                leave_running,
                files,
                prev: prev_images_dir,
            };
            match archive {
                None => dump_dir(opts),
                Some(dest) => dump_archive(opts, &dest),
            }
        }
        Cmd::Restore { dir, archive, detach, inherit_fd, shell_job } => {
            match restore::RestoreOptions::new(dir.unwrap_or_default(), detach, &inherit_fd, shell_job) {
                Ok(opts) => return run_restore(opts, archive.as_deref()),
                Err(e) => fail(&e, Exit::Usage),
            }
        }
        Cmd::Show { dir, archive, diff, json } => match diff {
            Some(pair) => show_diff(&pair[0], &pair[1], json),
            None => match (dir, archive) {
                (Some(d), _) => show_one(Image::Dir(d), json),
                (None, Some(a)) => show_one(Image::Archive(a), json),
                (None, None) => Exit::Usage,
            },
        },
        Cmd::Check => {
            let (text, ok) = rckpt::check::check();
            print!("{text}");
            if ok { Exit::Ok } else { Exit::Mismatch }
        }
        Cmd::Demo => match rckpt::demo::run() {
            Ok(()) => Exit::Ok,
            Err(e) => {
                eprintln!("rckpt demo: {e:#}");
                Exit::Failed
            }
        },
        Cmd::Completions { shell } => {
            // Generated in memory: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "rckpt", &mut script);
            print(&String::from_utf8_lossy(&script))
        }
        Cmd::DemoWorkload => rckpt::demo::workload(),
        Cmd::PreDump { pid, dir } => {
            match rckpt::dump::predump::pre_dump(&rckpt::dump::predump::PreDumpOptions { pid: Pid::from_raw(pid), dir })
            {
                Ok(r) => {
                    progress::log(
                        1,
                        format_args!(
                            "pre-dumped {} task(s), {} of pages, frozen {:.1} ms, total {:.1} ms; writes tracked by pid {}",
                            r.pids.len(),
                            human_bytes(r.pages_bytes),
                            r.frozen.as_secs_f64() * 1e3,
                            r.total.as_secs_f64() * 1e3,
                            r.holder
                        ),
                    );
                    Exit::Ok
                }
                Err(e) => fail(&e, Exit::of_dump(&e)),
            }
        }
        Cmd::Run { cmd } => match rckpt::run::run(&cmd) {
            Ok(status) => return ExitCode::from(status),
            Err(e) => fail(&e, Exit::Failed),
        },
    };
    ExitCode::from(code.code())
}

fn fail(e: &dyn std::fmt::Display, code: Exit) -> Exit {
    progress::log(0, format_args!("{e}"));
    code
}

/// What a dump says when it is done: `-v` the totals, always the externals
/// (which a restore must bind).
fn report_dump(r: &dump::DumpReport) {
    progress::log(
        1,
        format_args!(
            "dumped {} task(s), {} MiB of pages, frozen {:.1} ms, total {:.1} ms",
            r.pids.len(),
            r.pages_bytes >> 20,
            r.frozen.as_secs_f64() * 1e3,
            r.total.as_secs_f64() * 1e3
        ),
    );
    for e in &r.externals {
        progress::log(
            0,
            format_args!("external {} (bind it at restore: --inherit-fd 'fd[N]:{}' or --shell-job)", e.key, e.key),
        );
    }
}

fn dump_dir(opts: dump::DumpOptions) -> Exit {
    let bar = Bar::start();
    let r = dump::dump(&opts);
    bar.finish();
    match r {
        Ok(r) => {
            report_dump(&r);
            Exit::Ok
        }
        Err(e) => fail(&e, Exit::of_dump(&e)),
    }
}

/// Dumps into a private directory beside the archive (or in $TMPDIR for
/// stdout), packs it, and removes it. If packing fails after the tree was
/// killed, the directory is kept: it is the only copy of the tree.
fn dump_archive(mut opts: dump::DumpOptions, dest: &Path) -> Exit {
    let mut out = match archive::Output::open(dest) {
        Ok(o) => o,
        Err(e) => return fail(&e, e.exit()),
    };
    let work = match PrivateDir::new(&out.work_parent()) {
        Ok(w) => w,
        Err(e) => return fail(&e, e.exit()),
    };
    opts.dir = work.path().join("image");
    let bar = Bar::start();
    let r = match dump::dump(&opts) {
        Ok(r) => r,
        Err(e) => {
            bar.finish();
            return fail(&e, Exit::of_dump(&e));
        }
    };
    let packed = archive::pack(&opts.dir, out.writer()).and_then(|p| out.commit().map(|()| p));
    bar.finish();
    match packed {
        Ok(p) => {
            report_dump(&r);
            progress::log(
                1,
                format_args!(
                    "archive {}: {} file(s), {} packed into {}",
                    dest.display(),
                    p.files,
                    human_bytes(p.bytes),
                    human_bytes(p.archive_bytes)
                ),
            );
            Exit::Ok
        }
        Err(e) => {
            let code = fail(&e, e.exit());
            let kept = work.keep();
            progress::log(0, format_args!("the image was kept in {} (restore it with -D)", kept.display()));
            report_dump(&r);
            code
        }
    }
}

fn run_restore(mut opts: restore::RestoreOptions, src: Option<&Path>) -> ExitCode {
    let bar = Bar::start();
    // Removed as soon as the tree runs: nothing of it is used after.
    let mut work: Option<PrivateDir> = None;
    if let Some(src) = src {
        match archive::unpack_private(src) {
            Ok((w, img)) => {
                opts.dir = img;
                work = Some(w);
            }
            Err(e) => {
                bar.finish();
                return ExitCode::from(fail(&e, e.exit()).code());
            }
        }
    }
    let r = restore::restore(&opts);
    drop(work);
    bar.finish();
    let pid = match r {
        Ok(pid) => pid,
        Err(e) => return ExitCode::from(fail(&e, Exit::of_restore(&e)).code()),
    };
    progress::log(1, format_args!("restored {pid}"));
    if opts.detach {
        return ExitCode::from(Exit::Ok.code());
    }
    match restore::wait_exit(pid) {
        Ok(restore::Outcome::Exited(code)) => ExitCode::from(code),
        Ok(restore::Outcome::Detached(_)) => ExitCode::from(Exit::Ok.code()),
        Err(e) => ExitCode::from(fail(&e, Exit::Failed).code()),
    }
}

enum Image {
    Dir(PathBuf),
    Archive(PathBuf),
}

impl Image {
    /// A directory or, for --diff, whatever the path is.
    fn guess(p: &Path) -> Image {
        match std::fs::metadata(p) {
            Ok(m) if !m.is_dir() => Image::Archive(p.into()),
            _ if p == Path::new("-") => Image::Archive(p.into()),
            _ => Image::Dir(p.into()),
        }
    }

    /// Reads and summarizes it (an archive unpacked into a private directory,
    /// removed once read).
    fn load(&self) -> Result<(show::Summary, rckpt_images::ImageSet), Exit> {
        let (work, dir, name) = match self {
            Image::Dir(d) => (None, d.clone(), d.display().to_string()),
            Image::Archive(a) => match archive::unpack_private(a) {
                Ok((w, img)) => (Some(w), img, a.display().to_string()),
                Err(e) => return Err(fail(&e, e.exit())),
            },
        };
        let set = restore::read::read(&dir).map_err(|e| fail(&e, Exit::of_restore(&e)))?;
        let mut s = show::summarize(&dir, &set);
        s.image.dir = name;
        drop(work);
        Ok((s, set))
    }
}

fn print(text: &str) -> Exit {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Exit::Ok,
        // A reader that stopped early (`| head`) is not a failure of rckpt.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => fail(&e, Exit::Failed),
    }
}

fn show_one(img: Image, json: bool) -> Exit {
    match img.load() {
        Ok((s, _)) => print(&if json { show::to_json(&s) } else { show::render(&s) }),
        Err(code) => code,
    }
}

fn show_diff(a: &Path, b: &Path, json: bool) -> Exit {
    let (sa, seta) = match Image::guess(a).load() {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (sb, setb) = match Image::guess(b).load() {
        Ok(x) => x,
        Err(code) => return code,
    };
    let d = show::diff::diff((&sa, &seta), (&sb, &setb));
    print(&if json { show::to_json(&d) } else { show::diff::render(&d) })
}

/// "4096", "64K", "1M", "2G".
fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (e.g. 4096, 64K, 1M, 2G)"))
}
