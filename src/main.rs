//! The rckpt command line: parse, call the library, map errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rckpt::exit::Exit;
use rckpt::sys::Pid;
use rckpt::{dump, restore};

#[derive(Parser)]
#[command(name = "rckpt", version, about = "Checkpoint and restore Linux process trees from user space")]
struct Cli {
    /// More output (-v: steps and timings).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Freeze a running process and save it to an image directory.
    #[command(
        after_help = "Examples:\n  rckpt dump -t 1234 -D /tmp/img\n  rckpt dump -t 1234 -D /tmp/img --leave-running"
    )]
    Dump {
        /// The process to dump.
        #[arg(short = 't', long = "tree", value_name = "PID")]
        pid: i32,
        /// Image directory (created 0700; must not hold an image yet).
        #[arg(short = 'D', long = "images-dir", value_name = "DIR")]
        dir: PathBuf,
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
    },
    /// Bring a dumped process back, with its pid, continuing where it stopped.
    #[command(
        after_help = "Examples:\n  rckpt restore -D /tmp/img\n  rckpt restore -D /tmp/img --inherit-fd 'fd[1]:pipe:[12345]'\n  rckpt restore -D /tmp/img --shell-job --detach"
    )]
    Restore {
        /// Image directory written by `rckpt dump`.
        #[arg(short = 'D', long = "images-dir", value_name = "DIR")]
        dir: PathBuf,
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
    /// Print what an image holds.
    Show {
        #[arg(short = 'D', long = "images-dir", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Probe each kernel feature rckpt relies on.
    Check,
    /// Start a built-in workload, checkpoint it, kill it, restore it, and show it
    /// continuing from where it was.
    Demo,
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
    let verbose = cli.verbose;
    let code = match cli.cmd {
        Cmd::Dump { pid, dir, leave_running, tcp_established, file_locks, ext_unix_sk, ghost_limit } => {
            let files = dump::FileOptions { tcp_established, file_locks, ext_unix_sk, ghost_limit };
            let opts = dump::DumpOptions { pid: Pid::from_raw(pid), dir, leave_running, files };
            match dump::dump(&opts) {
                Ok(r) => {
                    if verbose > 0 {
                        eprintln!(
                            "rckpt: dumped {} task(s), {} MiB of pages, frozen {:.1} ms, total {:.1} ms",
                            r.pids.len(),
                            r.pages_bytes >> 20,
                            r.frozen.as_secs_f64() * 1e3,
                            r.total.as_secs_f64() * 1e3
                        );
                    }
                    for e in &r.externals {
                        eprintln!(
                            "rckpt: external {} (bind it at restore: --inherit-fd 'fd[N]:{}' or --shell-job)",
                            e.key, e.key
                        );
                    }
                    Exit::Ok
                }
                Err(e) => fail(&e, Exit::of_dump(&e)),
            }
        }
        Cmd::Restore { dir, detach, inherit_fd, shell_job } => {
            let opts = match restore::RestoreOptions::new(dir, detach, &inherit_fd, shell_job) {
                Ok(o) => o,
                Err(e) => return ExitCode::from(fail(&e, Exit::Usage).code()),
            };
            match restore::restore(&opts) {
                Ok(pid) => {
                    if verbose > 0 {
                        eprintln!("rckpt: restored {pid}");
                    }
                    if opts.detach {
                        Exit::Ok
                    } else {
                        match restore::wait_exit(pid) {
                            Ok(restore::Outcome::Exited(code)) => return ExitCode::from(code),
                            Ok(restore::Outcome::Detached(_)) => Exit::Ok,
                            Err(e) => fail(&e, Exit::Failed),
                        }
                    }
                }
                Err(e) => fail(&e, Exit::of_restore(&e)),
            }
        }
        Cmd::Show { dir } => match rckpt::show::show(&dir) {
            Ok(text) => {
                print!("{text}");
                Exit::Ok
            }
            Err(e) => fail(&e, Exit::of_restore(&e)),
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
        Cmd::DemoWorkload => rckpt::demo::workload(),
    };
    ExitCode::from(code.code())
}

fn fail(e: &dyn std::fmt::Display, code: Exit) -> Exit {
    eprintln!("rckpt: {e}");
    code
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
