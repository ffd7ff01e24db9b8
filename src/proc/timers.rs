//! /proc/PID/timers: the POSIX timers of a task (their ids, clocks and how they
//! notify; the parasite reads their times).

use nix::unistd::Pid;

use super::{ProcError, Result, path, read_string};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerInfo {
    pub id: i32,
    pub signo: i32,
    pub sigval: u64,
    /// "signal", "thread", "none" (SIGEV_THREAD shows as "signal").
    pub notify: String,
    /// "pid" or "tid" and the id after "notify: signal/".
    pub notify_tid: i32,
    pub thread_target: bool,
    pub clock: i32,
}

pub fn parse(text: &str) -> std::result::Result<Vec<TimerInfo>, String> {
    let mut out: Vec<TimerInfo> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k == "ID" {
            out.push(TimerInfo { id: v.parse().map_err(|_| format!("ID {v:?}"))?, ..Default::default() });
            continue;
        }
        let t = out.last_mut().ok_or("timer field before ID")?;
        match k {
            "signal" => {
                let (s, val) = v.split_once('/').ok_or("signal field")?;
                t.signo = s.parse().map_err(|_| format!("signal {s:?}"))?;
                t.sigval = u64::from_str_radix(val, 16).map_err(|_| format!("sigval {val:?}"))?;
            }
            "notify" => {
                let (how, who) = v.split_once('/').ok_or("notify field")?;
                t.notify = how.to_string();
                let (kind, id) = who.split_once('.').ok_or("notify target")?;
                t.thread_target = kind == "tid";
                t.notify_tid = id.parse().map_err(|_| format!("notify target {id:?}"))?;
            }
            "ClockID" => t.clock = v.parse().map_err(|_| format!("ClockID {v:?}"))?,
            _ => {}
        }
    }
    Ok(out)
}

pub fn timers(pid: Pid) -> Result<Vec<TimerInfo>> {
    let p = path(pid, "timers");
    let text = read_string(p.clone())?;
    parse(&text).map_err(|what| ProcError::Parse { path: p, what })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_timers() {
        let t = "ID: 0\nsignal: 14/00007ffd12345678\nnotify: signal/pid.4242\nClockID: 1\nID: 3\nsignal: 10/0000000000000000\nnotify: thread/tid.4243\nClockID: 0\n";
        let v = super::parse(t).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].id, v[0].signo, v[0].sigval, v[0].clock), (0, 14, 0x7ffd12345678, 1));
        assert!(v[1].thread_target && v[1].notify == "thread" && v[1].notify_tid == 4243);
    }
}
