//! Flow-log layer: reading the CloudWatch-style streams (`cloudwatch/FLOWLOGNAME/eni-…-all.log`)
//! as they grow, for `vpclab logs --follow`. A `Follower` remembers how far it read each stream
//! and hands out whole new lines only; the caller polls it, so no file-watching dependency.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One new record line of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLine {
    /// The flow log's name (the stream's folder).
    pub flow_log: String,
    /// `eni-…`, from the stream's file name.
    pub interface_id: String,
    pub line: String,
}

#[derive(Default)]
struct Stream {
    /// Bytes read so far.
    offset: u64,
    /// The end of the file when it did not end in a newline: the writer is mid-append.
    partial: Vec<u8>,
}

/// Follows every stream below one `cloudwatch` folder, those created later included.
pub struct Follower {
    root: PathBuf,
    streams: BTreeMap<PathBuf, Stream>,
}

const SUFFIX: &str = "-all.log";

impl Follower {
    /// Follows the streams below `root` (which need not exist yet) from their start.
    pub fn new(root: &Path) -> Follower {
        Follower {
            root: root.to_path_buf(),
            streams: BTreeMap::new(),
        }
    }

    /// The whole lines written since the last call, stream by stream in path order. A stream
    /// seen for the first time is read from its start; one that shrank (the lab was built
    /// again) too.
    pub fn poll(&mut self) -> io::Result<Vec<StreamLine>> {
        let mut out = Vec::new();
        for (flow_log, path) in stream_files(&self.root)? {
            let Some(interface_id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(SUFFIX))
                .map(str::to_string)
            else {
                continue;
            };
            let stream = self.streams.entry(path.clone()).or_default();
            let fresh = match read_from(&path, stream) {
                Ok(bytes) => bytes,
                // Removed between the listing and the read (`vpclab down`).
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            };
            stream.partial.extend_from_slice(&fresh);
            let Some(last_newline) = stream.partial.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let rest = stream.partial.split_off(last_newline + 1);
            let whole = std::mem::replace(&mut stream.partial, rest);
            for line in whole.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                out.push(StreamLine {
                    flow_log: flow_log.clone(),
                    interface_id: interface_id.clone(),
                    line: String::from_utf8_lossy(line).into_owned(),
                });
            }
        }
        Ok(out)
    }
}

/// What was appended to `path` since `stream.offset`; resets the stream if the file shrank.
fn read_from(path: &Path, stream: &mut Stream) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len < stream.offset {
        *stream = Stream::default();
    }
    if len == stream.offset {
        return Ok(Vec::new());
    }
    file.seek(SeekFrom::Start(stream.offset))?;
    let mut fresh = Vec::new();
    file.read_to_end(&mut fresh)?;
    stream.offset += fresh.len() as u64;
    Ok(fresh)
}

/// (flow log name, stream file) for every `*-all.log` one folder below `root`, sorted.
fn stream_files(root: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let logs = match fs::read_dir(root) {
        Ok(entries) => entries,
        // No window has closed yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", root.display()))),
    };
    let mut out = Vec::new();
    for log in logs.flatten() {
        let Ok(name) = log.file_name().into_string() else {
            continue;
        };
        let Ok(files) = fs::read_dir(log.path()) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            if path.to_string_lossy().ends_with(SUFFIX) {
                out.push((name.clone(), path));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vpclab-follow-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("all")).unwrap();
        dir
    }

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(f: &mut Follower) -> Vec<String> {
        f.poll()
            .unwrap()
            .into_iter()
            .map(|l| format!("{} {} {}", l.flow_log, l.interface_id, l.line))
            .collect()
    }

    #[test]
    fn new_whole_lines_appear_as_streams_grow() {
        let dir = scratch("grow");
        let mut f = Follower::new(&dir.join("missing"));
        assert!(
            f.poll().unwrap().is_empty(),
            "no stream yet is not an error"
        );

        let web = dir.join("all/eni-0aaa-all.log");
        append(&web, "one\n");
        let mut f = Follower::new(&dir);
        assert_eq!(lines(&mut f), ["all eni-0aaa one"]);
        assert!(lines(&mut f).is_empty());

        // Half a line is held back until its newline arrives.
        append(&web, "two\nthr");
        assert_eq!(lines(&mut f), ["all eni-0aaa two"]);
        append(&web, "ee\n");
        assert_eq!(lines(&mut f), ["all eni-0aaa three"]);

        // A stream created later, in another flow log, is read from its start.
        fs::create_dir_all(dir.join("rej")).unwrap();
        append(&dir.join("rej/eni-0bbb-all.log"), "four\nfive\n");
        append(&dir.join("rej/notes.txt"), "not a stream\n");
        assert_eq!(lines(&mut f), ["rej eni-0bbb four", "rej eni-0bbb five"]);

        // Rebuilt from scratch: shorter than what was read, so read again.
        fs::write(&web, "six\n").unwrap();
        assert_eq!(lines(&mut f), ["all eni-0aaa six"]);
        let _ = fs::remove_dir_all(&dir);
    }
}
