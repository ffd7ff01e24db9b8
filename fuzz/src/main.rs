//! The stable fuzz driver for the rckpt image format: no libFuzzer, no nightly.
//!
//! It mutates the seed corpus (fuzz/corpus/<target>/) with the engine of
//! src/mutate.rs and runs every input through src/harness.rs on worker threads,
//! checking each for a panic (caught and recorded), a hang (a time limit per
//! input, measured) and its peak heap (the counting allocator of src/alloc.rs,
//! against the bound there). Failures are minimized and saved under
//! fuzz/crashes/. See README.md for the commands.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rckpt_fuzz::harness::{self, Depth, Target};
use rckpt_fuzz::mutate::{self, Rng};
use rckpt_fuzz::{alloc, load_corpus, seeds, stress};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

const USAGE: &str = "\
usage: rckpt-fuzz [OPTIONS]                      fuzz (the default)
       rckpt-fuzz --replay TARGET FILE...        run files through a target
       rckpt-fuzz --gen-corpus [IMAGE_DIR...]    rewrite the seed corpus
       rckpt-fuzz --stress [--stress-max BYTES]  large-input heap and time figures
       rckpt-fuzz --unpack ARCHIVE DIR           write an `image` input out as a directory
       rckpt-fuzz --write-repros                 rewrite the slow-validation reproducers in fuzz/crashes

options:
  --iterations N      inputs in all, shared evenly by the targets (default 1000000)
  --targets A,B,...   targets to run (default all: inventory,pstree,core,mm,files,fdinfo,pages,image)
  --seed S            seed of the mutations (default: from the clock; printed)
  --jobs J            worker threads (default: the number of CPUs)
  --time-limit-ms T   slowest accepted input (default 100)
  --corpus DIR        seed corpus (default fuzz/corpus)
  --crashes DIR       where reproducers go (default fuzz/crashes)
";

struct Opts {
    iterations: u64,
    targets: Vec<Target>,
    seed: u64,
    jobs: usize,
    time_limit: Duration,
    corpus: PathBuf,
    crashes: PathBuf,
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("rckpt-fuzz: {msg}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::panic::set_hook(Box::new(panic_hook));
    match args.first().map(String::as_str) {
        Some("--help" | "-h") => print!("{USAGE}"),
        Some("--replay") => replay(&args[1..]),
        Some("--gen-corpus") => {
            let from: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
            let out = fuzz_dir().join("corpus");
            match seeds::generate(&out, &from) {
                Ok(n) => println!("wrote {n} seed files under {}", out.display()),
                Err(e) => die(e),
            }
        }
        Some("--stress") => {
            let max = match args.get(1).map(String::as_str) {
                Some("--stress-max") => args.get(2).and_then(|v| v.parse().ok()).unwrap_or_else(|| die(USAGE)),
                _ => 16 << 20,
            };
            run_stress(max);
        }
        Some("--write-repros") => write_repros(&fuzz_dir().join("crashes")),
        Some("--unpack") => {
            let (Some(a), Some(d)) = (args.get(1), args.get(2)) else { die(USAGE) };
            let bytes = std::fs::read(a).unwrap_or_else(|e| die(format!("{a}: {e}")));
            harness::Dir::parse(&bytes).unpack(Path::new(d)).unwrap_or_else(|e| die(format!("{d}: {e}")));
        }
        _ => fuzz(parse_opts(&args)),
    }
}

fn parse_opts(args: &[String]) -> Opts {
    let mut o = Opts {
        iterations: 1_000_000,
        targets: Target::ALL.to_vec(),
        seed: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        time_limit: Duration::from_millis(100),
        corpus: fuzz_dir().join("corpus"),
        crashes: fuzz_dir().join("crashes"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| die(format!("{a} needs a value\n{USAGE}"))).clone();
        let num = |v: String| v.replace('_', "").parse::<u64>().unwrap_or_else(|_| die(format!("{a}: not a number")));
        match a.as_str() {
            "--iterations" => o.iterations = num(val()),
            "--seed" => o.seed = num(val()),
            "--jobs" => o.jobs = num(val()).max(1) as usize,
            "--time-limit-ms" => o.time_limit = Duration::from_millis(num(val())),
            "--corpus" => o.corpus = PathBuf::from(val()),
            "--crashes" => o.crashes = PathBuf::from(val()),
            "--targets" => {
                o.targets = val()
                    .split(',')
                    .map(|n| Target::from_name(n).unwrap_or_else(|| die(format!("no target {n}"))))
                    .collect()
            }
            _ => die(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    o
}

// ---------------------------------------------------------------------------
// Panics

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<(String, String)>> = const { std::cell::RefCell::new(None) };
    static IN_HARNESS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    let msg = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let loc = info.location().map_or_else(|| "?".into(), |l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    if IN_HARNESS.with(|h| h.get()) {
        LAST_PANIC.with(|p| *p.borrow_mut() = Some((msg, loc)));
    } else {
        eprintln!("rckpt-fuzz: panic at {loc}: {msg}");
    }
}

/// What one input did.
struct Outcome {
    depth: Option<Depth>,
    /// (message, location) of a panic.
    panic: Option<(String, String)>,
    peak: usize,
    time: Duration,
}

fn run_one(target: Target, input: &[u8]) -> Outcome {
    IN_HARNESS.with(|h| h.set(true));
    let t = Instant::now();
    alloc::take_metered();
    let r = catch_unwind(AssertUnwindSafe(|| harness::run(target, input)));
    let peak = alloc::take_metered();
    let time = t.elapsed();
    IN_HARNESS.with(|h| h.set(false));
    match r {
        Ok(d) => Outcome { depth: Some(d), panic: None, peak, time },
        Err(_) => {
            let p = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| ("?".into(), "?".into()));
            Outcome { depth: None, panic: Some(p), peak, time }
        }
    }
}

// ---------------------------------------------------------------------------
// Failures

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FailKind {
    Panic,
    Hang,
    Alloc,
}

impl FailKind {
    fn name(self) -> &'static str {
        match self {
            FailKind::Panic => "panic",
            FailKind::Hang => "hang",
            FailKind::Alloc => "alloc",
        }
    }
}

struct Failure {
    count: u64,
    detail: String,
    file: PathBuf,
}

type Failures = Mutex<BTreeMap<(Target, FailKind, String), Failure>>;

/// Whether `input` still fails the same way (for minimization).
fn fails(target: Target, kind: FailKind, key: &str, input: &[u8], limit: Duration) -> bool {
    let o = run_one(target, input);
    match kind {
        FailKind::Panic => o.panic.is_some_and(|(_, loc)| loc == key),
        FailKind::Alloc => o.peak > alloc::bound(input.len()),
        FailKind::Hang => o.time > limit,
    }
}

/// Greedy chunk removal while the failure stays the same.
fn minimize(target: Target, kind: FailKind, key: &str, input: &[u8], limit: Duration) -> Vec<u8> {
    let mut best = input.to_vec();
    let mut budget = if kind == FailKind::Hang { 50 } else { 5000 };
    let mut chunk = best.len().next_power_of_two() / 2;
    while chunk >= 1 && budget > 0 {
        let mut at = 0;
        while at < best.len() && budget > 0 {
            let mut cand = best.clone();
            cand.drain(at..(at + chunk).min(best.len()));
            budget -= 1;
            if fails(target, kind, key, &cand, limit) {
                best = cand;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    best
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ *x as u64).wrapping_mul(0x100_0000_01b3))
}

#[allow(clippy::too_many_arguments)]
fn record(
    failures: &Failures,
    dir: &Path,
    target: Target,
    kind: FailKind,
    key: String,
    what: String,
    input: &[u8],
    limit: Duration,
) {
    {
        let mut f = failures.lock().unwrap();
        if let Some(e) = f.get_mut(&(target, kind, key.clone())) {
            e.count += 1;
            return;
        }
    }
    let min = minimize(target, kind, &key, input, limit);
    let name = format!("{}-{}-{:016x}", target.name(), kind.name(), fnv(&min));
    let file = dir.join(format!("{name}.bin"));
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(&file, &min);
    let o = run_one(target, &min);
    let detail = format!(
        "target: {}\nfailure: {}\n{what}\nminimized: {} bytes (from {}), peak heap {} bytes, {:?}\n\
         replay: cargo run --release --manifest-path fuzz/Cargo.toml -- --replay {} {}\nhex: {}\n",
        target.name(),
        kind.name(),
        min.len(),
        input.len(),
        o.peak,
        o.time,
        target.name(),
        file.display(),
        hex(&min)
    );
    let _ = std::fs::write(dir.join(format!("{name}.txt")), &detail);
    eprintln!("\n*** {} in {}: {what}\n    saved {}", kind.name(), target.name(), file.display());
    let mut f = failures.lock().unwrap();
    f.entry((target, kind, key)).or_insert(Failure { count: 0, detail, file }).count += 1;
}

// ---------------------------------------------------------------------------
// Fuzzing

#[derive(Default, Clone)]
struct Stats {
    inputs: u64,
    depth: [u64; 4],
    busy: Duration,
    max_time: Duration,
    max_time_len: usize,
    /// The slowest input, timed again at the end (a preempted thread looks slow).
    slowest: Vec<u8>,
    max_peak: usize,
    max_peak_len: usize,
    /// Largest peak / input length, and its input length.
    max_ratio: f64,
    max_ratio_len: usize,
    /// Largest peak / (cap of the input).
    max_cap_ratio: f64,
    total_len: u64,
    max_len: usize,
    failures: [u64; 3],
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.inputs += o.inputs;
        for i in 0..4 {
            self.depth[i] += o.depth[i];
        }
        for i in 0..3 {
            self.failures[i] += o.failures[i];
        }
        self.busy += o.busy;
        self.total_len += o.total_len;
        self.max_len = self.max_len.max(o.max_len);
        if o.max_time > self.max_time {
            self.max_time = o.max_time;
            self.max_time_len = o.max_time_len;
            self.slowest = o.slowest.clone();
        }
        if o.max_peak > self.max_peak {
            self.max_peak = o.max_peak;
            self.max_peak_len = o.max_peak_len;
        }
        if o.max_ratio > self.max_ratio {
            self.max_ratio = o.max_ratio;
            self.max_ratio_len = o.max_ratio_len;
        }
        self.max_cap_ratio = self.max_cap_ratio.max(o.max_cap_ratio);
    }
}

/// A worker's current input, for the watchdog.
struct Slot {
    /// Milliseconds since the start of the run at which the input started, plus
    /// one; zero when idle.
    started: AtomicU64,
    target: AtomicUsize,
    input: Mutex<Vec<u8>>,
}

const CHUNK: u64 = 500;
const POOL: usize = 256;
/// An input that runs this many time limits is not coming back: save it and stop.
const HANG_ABORT_FACTOR: u32 = 100;

fn fuzz(o: Opts) {
    let corpus = Arc::new(load_corpus(&o.corpus));
    for &t in &o.targets {
        if corpus.of(t).is_empty() {
            die(format!("no seeds for {} in {} (run --gen-corpus)", t.name(), o.corpus.display()));
        }
    }
    println!(
        "rckpt-fuzz: {} inputs over {} targets, seed {}, {} jobs, time limit {:?}, heap bound {} + {} x input bytes",
        o.iterations,
        o.targets.len(),
        o.seed,
        o.jobs,
        o.time_limit,
        alloc::ALLOC_BASE,
        alloc::ALLOC_PER_BYTE
    );
    // The seeds themselves first: they must all pass every check.
    for &t in &o.targets {
        let mut depths = BTreeMap::new();
        for s in corpus.of(t) {
            let out = run_one(t, s);
            if let Some((m, l)) = out.panic {
                die(format!("a {} seed panics at {l}: {m}", t.name()));
            }
            *depths.entry(format!("{:?}", out.depth.unwrap())).or_insert(0) += 1;
        }
        println!("  {:9} {} seeds: {depths:?}", t.name(), corpus.of(t).len());
    }

    // Work in chunks, interleaved across targets.
    let per_target = o.iterations / o.targets.len() as u64;
    let mut chunks: Vec<(Target, u64, u64)> = Vec::new();
    let mut left: Vec<u64> = o
        .targets
        .iter()
        .enumerate()
        .map(|(i, _)| per_target + u64::from((i as u64) < o.iterations % o.targets.len() as u64))
        .collect();
    let mut idx = 0u64;
    while left.iter().any(|l| *l > 0) {
        for (i, &t) in o.targets.iter().enumerate() {
            let n = left[i].min(CHUNK);
            if n > 0 {
                chunks.push((t, idx, n));
                left[i] -= n;
            }
        }
        idx += 1;
    }
    let chunks = Arc::new(chunks);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failures: Arc<Failures> = Arc::new(Mutex::new(BTreeMap::new()));
    let slots: Arc<Vec<Slot>> = Arc::new(
        (0..o.jobs)
            .map(|_| Slot { started: AtomicU64::new(0), target: AtomicUsize::new(0), input: Mutex::new(Vec::new()) })
            .collect(),
    );
    let start = Instant::now();
    let finished = Arc::new(AtomicBool::new(false));

    // The watchdog: an input that never ends is saved before the run is stopped.
    let watchdog = {
        let (slots, finished, crashes) = (slots.clone(), finished.clone(), o.crashes.clone());
        let abort_after = (o.time_limit * HANG_ABORT_FACTOR).as_millis() as u64;
        std::thread::spawn(move || {
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = start.elapsed().as_millis() as u64 + 1;
                for s in slots.iter() {
                    let st = s.started.load(Ordering::Relaxed);
                    if st != 0 && now - st > abort_after {
                        let t = Target::ALL[s.target.load(Ordering::Relaxed)];
                        let input = s.input.lock().unwrap().clone();
                        let _ = std::fs::create_dir_all(&crashes);
                        let file = crashes.join(format!("{}-hang-{:016x}.bin", t.name(), fnv(&input)));
                        let _ = std::fs::write(&file, &input);
                        eprintln!(
                            "\n*** an input of {} has run for {abort_after} ms: saved {}",
                            t.name(),
                            file.display()
                        );
                        std::process::exit(3);
                    }
                }
            }
        })
    };

    let mut workers = Vec::new();
    for w in 0..o.jobs {
        let (corpus, chunks, next, done, failures, slots) =
            (corpus.clone(), chunks.clone(), next.clone(), done.clone(), failures.clone(), slots.clone());
        let (seed, limit, crash_dir) = (o.seed, o.time_limit, o.crashes.clone());
        workers.push(std::thread::spawn(move || {
            let mut stats: BTreeMap<Target, Stats> = BTreeMap::new();
            let mut pools: BTreeMap<Target, Vec<Vec<u8>>> = BTreeMap::new();
            let slot = &slots[w];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(target, ci, n)) = chunks.get(i) else { break };
                let ti = Target::ALL.iter().position(|t| *t == target).unwrap();
                slot.target.store(ti, Ordering::Relaxed);
                let mut rng = Rng::new(seed ^ ((ti as u64) << 56) ^ ci.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let st = stats.entry(target).or_default();
                let pool = pools.entry(target).or_default();
                for _ in 0..n {
                    let input = if target == Target::Image {
                        mutate::mutate_image(&mut rng, &corpus, pool)
                    } else {
                        mutate::mutate_file(&mut rng, target, &corpus, pool)
                    };
                    one_input(target, input, &mut rng, st, pool, slot, start, limit, &failures, &crash_dir);
                }
                done.fetch_add(n, Ordering::Relaxed);
            }
            stats
        }));
    }

    // Progress.
    let total = o.iterations;
    let mut last = Instant::now();
    while done.load(Ordering::Relaxed) < total && workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            let d = done.load(Ordering::Relaxed);
            let s = start.elapsed().as_secs_f64();
            eprintln!("  {d}/{total} inputs, {:.0} s, {:.0}/s", s, d as f64 / s);
        }
    }
    let mut by_target: BTreeMap<Target, Stats> = BTreeMap::new();
    for w in workers {
        for (t, s) in w.join().expect("a worker died") {
            by_target.entry(t).or_default().add(&s);
        }
    }
    finished.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    let wall = start.elapsed();
    report(&by_target, wall, &failures.lock().unwrap(), o.time_limit);
    if !failures.lock().unwrap().is_empty() {
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_arguments)]
fn one_input(
    target: Target,
    input: Vec<u8>,
    rng: &mut Rng,
    st: &mut Stats,
    pool: &mut Vec<Vec<u8>>,
    slot: &Slot,
    start: Instant,
    limit: Duration,
    failures: &Failures,
    crash_dir: &Path,
) {
    {
        let mut s = slot.input.lock().unwrap();
        s.clear();
        s.extend_from_slice(&input);
    }
    slot.started.store(start.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    let mut out = run_one(target, &input);
    if out.time > limit {
        // Measured again: a preempted thread is not a hang.
        for _ in 0..2 {
            let again = run_one(target, &input);
            out.time = out.time.min(again.time);
        }
    }
    slot.started.store(0, Ordering::Relaxed);

    let len = input.len();
    st.inputs += 1;
    st.busy += out.time;
    st.total_len += len as u64;
    st.max_len = st.max_len.max(len);
    if out.time > st.max_time {
        st.max_time = out.time;
        st.max_time_len = len;
        st.slowest = input.clone();
    }
    if out.peak > st.max_peak {
        st.max_peak = out.peak;
        st.max_peak_len = len;
    }
    let ratio = out.peak as f64 / len.max(1) as f64;
    if ratio > st.max_ratio {
        st.max_ratio = ratio;
        st.max_ratio_len = len;
    }
    st.max_cap_ratio = st.max_cap_ratio.max(out.peak as f64 / target.cap(&input) as f64);
    if let Some(d) = out.depth {
        st.depth[d as usize] += 1;
        if d >= Depth::Check && rng.chance(1, 4) {
            if pool.len() < POOL {
                pool.push(input.clone());
            } else {
                let i = rng.below(POOL);
                pool[i] = input.clone();
            }
        }
    }
    if let Some((msg, loc)) = out.panic {
        st.failures[0] += 1;
        record(
            failures,
            crash_dir,
            target,
            FailKind::Panic,
            loc.clone(),
            format!("panic at {loc}: {msg}"),
            &input,
            limit,
        );
    }
    if out.time > limit {
        st.failures[1] += 1;
        let what = format!("{:?} for an input of {len} bytes (limit {limit:?})", out.time);
        record(failures, crash_dir, target, FailKind::Hang, String::new(), what, &input, limit);
    }
    let bound = alloc::bound(len);
    if out.peak > bound {
        st.failures[2] += 1;
        let what = format!("peak heap {} bytes for an input of {len} bytes (bound {bound})", out.peak);
        record(failures, crash_dir, target, FailKind::Alloc, String::new(), what, &input, limit);
    }
}

fn report(
    by_target: &BTreeMap<Target, Stats>,
    wall: Duration,
    failures: &BTreeMap<(Target, FailKind, String), Failure>,
    limit: Duration,
) {
    println!(
        "\n| target | inputs | frame | decode | check | valid | mean len | max len | mean µs | max µs | max peak heap (len) | max heap/len (len) | max heap/cap | panics | hangs | alloc |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut all = Stats::default();
    let mut retimed = Vec::new();
    for (t, s) in by_target {
        all.add(s);
        row(t.name(), s);
        let again = (0..5).map(|_| run_one(*t, &s.slowest).time).min().unwrap_or_default();
        retimed.push(format!("{} {} µs ({} bytes)", t.name(), again.as_micros(), s.slowest.len()));
    }
    row("**all**", &all);
    println!("\nslowest input of each target, timed again (best of 5): {}", retimed.join(", "));
    println!(
        "\n{} inputs in {:.1} s wall ({:.0} inputs/s), {:.1} s of harness time; time limit {:?}; heap bound {} + {} x len bytes",
        all.inputs,
        wall.as_secs_f64(),
        all.inputs as f64 / wall.as_secs_f64(),
        all.busy.as_secs_f64(),
        limit,
        alloc::ALLOC_BASE,
        alloc::ALLOC_PER_BYTE
    );
    if failures.is_empty() {
        println!("no panic, no hang, no allocation beyond the bound");
    }
    for ((t, k, _), f) in failures {
        println!("\n{} x {} in {} ({}):\n{}", f.count, k.name(), t.name(), f.file.display(), f.detail);
    }
}

fn row(name: &str, s: &Stats) {
    let n = s.inputs.max(1);
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} ({}) | {:.0} ({}) | {:.4} | {} | {} | {} |",
        s.inputs,
        s.depth[0],
        s.depth[1],
        s.depth[2],
        s.depth[3],
        s.total_len / n,
        s.max_len,
        s.busy.as_secs_f64() * 1e6 / n as f64,
        s.max_time.as_micros(),
        s.max_peak,
        s.max_peak_len,
        s.max_ratio,
        s.max_ratio_len,
        s.max_cap_ratio,
        s.failures[0],
        s.failures[1],
        s.failures[2]
    );
}

// ---------------------------------------------------------------------------
// Other modes

fn replay(args: &[String]) {
    let Some(t) = args.first().and_then(|n| Target::from_name(n)) else { die(USAGE) };
    let mut bad = false;
    for f in &args[1..] {
        let bytes = std::fs::read(f).unwrap_or_else(|e| die(format!("{f}: {e}")));
        let o = run_one(t, &bytes);
        let bound = alloc::bound(bytes.len());
        match &o.panic {
            Some((m, l)) => {
                bad = true;
                println!("{f}: PANIC at {l}: {m}");
            }
            None => println!("{f}: {:?}", o.depth.unwrap()),
        }
        println!("    {} bytes, {:?}, peak heap {} bytes (bound {bound})", bytes.len(), o.time, o.peak);
        bad |= o.peak > bound;
    }
    if bad {
        std::process::exit(1);
    }
}

fn run_stress(max: usize) {
    let mut sizes = vec![];
    let mut s = 64 << 10;
    while s <= max {
        sizes.push(s);
        s *= 4;
    }
    println!("## Decoded sizes of list elements\n");
    println!("| element | bytes |");
    println!("|---|---:|");
    for (n, s) in stress::element_sizes() {
        println!("| {n} | {s} |");
    }
    println!("\n## Heap taken by decode + validation of files whose lists hold the smallest element\n");
    println!("| target | list | file bytes | peak heap | heap/len | seconds |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut worst: BTreeMap<Target, f64> = BTreeMap::new();
    for r in stress::alloc_table(&sizes) {
        let ratio = r.peak as f64 / r.len as f64;
        let w = worst.entry(r.target).or_default();
        *w = w.max(ratio);
        println!("| {} | {} | {} | {} | {:.1} | {:.3} |", r.target.name(), r.what, r.len, r.peak, ratio, r.secs);
        let bound = alloc::bound(r.len);
        if r.peak > bound {
            println!("|   | ^ above the bound of {bound} | | | | |");
        }
    }
    println!("\n| target | cap | worst heap/len | heap at the cap (extrapolated) |");
    println!("|---|---:|---:|---:|");
    for (t, w) in &worst {
        let cap = t.cap(&[]);
        println!("| {} | {} | {:.1} | {:.2} GiB |", t.name(), cap, w, w * cap as f64 / (1u64 << 30) as f64);
    }
    println!("\n## Validation time against list length\n");
    println!("| check | n | file bytes | seconds | result | n at the cap | seconds at the cap (n² extrapolated) |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    for r in stress::time_table(4096, 2.0) {
        let nmax = stress::max_n(&r);
        let at_cap = r.secs * (nmax as f64 / r.n as f64).powi(2);
        println!("| {} | {} | {} | {:.3} | {} | {} | {:.0} |", r.what, r.n, r.len, r.secs, r.result, nmax, at_cap);
    }
}

/// Writes the reproducers of the checks whose time grows with the square of a
/// list (see README.md, "Findings"), sized to take a few times the time limit.
fn write_repros(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| die(format!("{}: {e}", dir.display())));
    let cases: [(Target, &str, usize, Vec<u8>, &str); 2] = [
        (
            Target::PsTree,
            "pstree-hang-chain",
            24576,
            stress::pstree_repro(24576),
            "pstree.img: a chain of 24576 running tasks, each the child of the one before it (pid 2+i, \
             ppid 1+i, threads [pid]). PsTree::validate (images/src/pstree.rs) looks every task's parent \
             up with `self.tasks[..i].iter().any(..)`, twice: O(n^2). At the 16 MiB cap (about 1.3 million \
             tasks) that is tens of minutes; the reader runs it right after the inventory.",
        ),
        (
            Target::Image,
            "image-hang-parent-pages",
            16384,
            stress::parent_pages_image(16384).to_bytes(),
            "A valid image (the builders' two-task tree) whose child has 16384 one-page extents in one \
             private VMA and 16384 one-page ranges shared with its parent in another. \
             MmImage::validate_parent_pages (images/src/mm.rs) checks every range against every extent \
             (`self.extents.iter().any(..)`) and finds its VMA with a linear `vma_holding`: O(n^2). At \
             the 256 MiB cap of an mm image (millions of each) that is days.",
        ),
    ];
    for (t, name, n, bytes, what) in cases {
        let o = run_one(t, &bytes);
        let file = dir.join(format!("{name}.bin"));
        std::fs::write(&file, &bytes).unwrap_or_else(|e| die(format!("{}: {e}", file.display())));
        let text = format!(
            "target: {}\nfailure: hang (time limit 100 ms)\n{what}\nn = {n}: {} bytes, {:?} (result {:?}), peak heap {} bytes\n\
             replay: cargo run --release --manifest-path fuzz/Cargo.toml -- --replay {} fuzz/crashes/{name}.bin\n\
             regenerate: cargo run --release --manifest-path fuzz/Cargo.toml -- --write-repros\n\
             first 64 bytes (hex): {}\n",
            t.name(),
            bytes.len(),
            o.time,
            o.depth,
            o.peak,
            t.name(),
            hex(&bytes[..64.min(bytes.len())])
        );
        std::fs::write(dir.join(format!("{name}.txt")), &text).unwrap();
        print!("{}: {text}", file.display());
    }
}
