//! Hashing a file's content (SHA-256 or SM3) and taking its content sample, safely
//! against hostile files.
//!
//! - The file is opened with `O_NOFOLLOW | O_NONBLOCK`: a symlink swapped in is not
//!   followed and a FIFO swapped in does not block the monitor.
//! - What was opened is checked with `fstat`: only regular files are read.
//! - After reading, `fstat` again: a file unlinked meanwhile (`nlink == 0`) is
//!   [`HashError::Vanished`]; one whose size or ctime moved is [`HashError::Changed`]
//!   (the caller retries). A digest is never reported for content that changed
//!   under it.
//!
//! The content sample of a file longer than the sample is its head (three
//! quarters) and its tail (one quarter) joined by [`SAMPLE_GAP`]: code appended
//! to an existing script, the usual one-line backdoor, lands in the tail.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use sha2::Digest;

use super::config::HashAlgo;

const READ_CHUNK: usize = 64 * 1024;

/// Between the head and the tail of the sample of a file longer than the sample.
pub const SAMPLE_GAP: &str = "\n[...]\n";

/// What to compute for one file.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest {
    /// `None`: no hash (the watch set does not hash, or the file is too large).
    pub algo: Option<HashAlgo>,
    /// Bytes of content sample to keep (0 = none): the whole file if it is no
    /// longer, else its head and its tail.
    pub sample_bytes: usize,
}

/// The result of reading one file.
#[derive(Debug, Clone, Default)]
pub struct FileDigest {
    /// Lowercase hex digest, when requested.
    pub hash: Option<String>,
    /// The first bytes (and last bytes, see [`SAMPLE_GAP`]), when requested and
    /// the file looks like text (no NUL byte).
    pub sample: Option<String>,
    /// `fstat` of the file read, unchanged from start to end of the read: the
    /// metadata that goes with this digest.
    pub meta: Option<Metadata>,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("file vanished while it was being read")]
    Vanished,
    #[error("file changed while it was being read")]
    Changed,
    #[error("not a regular file")]
    NotRegular,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads `path` once and returns the requested digest and sample.
pub fn digest_file(path: &Path, request: DigestRequest) -> Result<FileDigest, HashError> {
    digest_file_with_hook(path, request, &mut || {})
}

/// [`digest_file`], calling `after_first_chunk` once the first chunk is read
/// (tests use it to change or delete the file mid-hash).
pub(crate) fn digest_file_with_hook(
    path: &Path,
    request: DigestRequest,
    after_first_chunk: &mut dyn FnMut(),
) -> Result<FileDigest, HashError> {
    let mut file = open_regular(path)?;
    let before = file.metadata()?;
    if !before.is_file() {
        return Err(HashError::NotRegular);
    }
    let mut hasher = request.algo.map(Hasher::new);
    let (head_len, tail_len) = sample_split(request.sample_bytes, before.len());
    let mut sample: Vec<u8> = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut first_chunk = true;
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HashError::Io(e)),
        };
        let chunk = &buffer[..read];
        if sample.len() < head_len {
            let take = (head_len - sample.len()).min(chunk.len());
            sample.extend_from_slice(&chunk[..take]);
        }
        if tail_len > 0 {
            keep_tail(&mut tail, chunk, tail_len);
        }
        match hasher.as_mut() {
            Some(hasher) => hasher.update(chunk),
            // Only a head was asked for, and we have it.
            None if sample.len() >= head_len && tail_len == 0 => break,
            None => {}
        }
        if first_chunk {
            first_chunk = false;
            after_first_chunk();
        }
    }
    let after = file.metadata()?;
    if after.nlink() == 0 {
        return Err(HashError::Vanished);
    }
    if changed_while_reading(&before, &after) {
        return Err(HashError::Changed);
    }
    Ok(FileDigest {
        hash: hasher.map(Hasher::finish_hex),
        sample: text_sample(&sample, &tail),
        meta: Some(after),
    })
}

/// Head and tail lengths of the sample of a file of `size` bytes: all of it when
/// it fits, else three quarters from the start and one from the end.
fn sample_split(sample_bytes: usize, size: u64) -> (usize, usize) {
    if size <= sample_bytes as u64 {
        return (sample_bytes, 0);
    }
    let tail = sample_bytes / 4;
    (sample_bytes - tail, tail)
}

/// Keeps the last `keep` bytes seen.
fn keep_tail(tail: &mut Vec<u8>, chunk: &[u8], keep: usize) {
    if chunk.len() >= keep {
        tail.clear();
        tail.extend_from_slice(&chunk[chunk.len() - keep..]);
    } else {
        tail.extend_from_slice(chunk);
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
    }
}

/// Opens without following a final symlink and without blocking on a FIFO.
fn open_regular(path: &Path) -> Result<File, HashError> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    match opened {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(HashError::Vanished),
        // ELOOP: the path is (now) a symlink; ENXIO: a socket or a FIFO without writer.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENXIO)) => {
            Err(HashError::NotRegular)
        }
        Err(e) => Err(HashError::Io(e)),
    }
}

fn changed_while_reading(before: &Metadata, after: &Metadata) -> bool {
    before.size() != after.size()
        || before.ctime() != after.ctime()
        || before.ctime_nsec() != after.ctime_nsec()
        || before.mtime() != after.mtime()
        || before.mtime_nsec() != after.mtime_nsec()
}

/// Keeps the sample only if it looks like text: no NUL byte. Invalid UTF-8 (a
/// multi-byte character cut at either end, or a legacy encoding) is lossily
/// replaced.
fn text_sample(head: &[u8], tail: &[u8]) -> Option<String> {
    if head.is_empty() || head.contains(&0) || tail.contains(&0) {
        return None;
    }
    let mut text = String::from_utf8_lossy(head).into_owned();
    if !tail.is_empty() {
        text.push_str(SAMPLE_GAP);
        text.push_str(&String::from_utf8_lossy(tail));
    }
    Some(text)
}

/// Lowercase hex digest of `bytes` (used for tests and for symlink targets).
pub fn digest_bytes(algo: HashAlgo, bytes: &[u8]) -> String {
    let mut hasher = Hasher::new(algo);
    hasher.update(bytes);
    hasher.finish_hex()
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sm3(sm3::Sm3),
}

impl Hasher {
    fn new(algo: HashAlgo) -> Self {
        match algo {
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sm3 => Hasher::Sm3(sm3::Sm3::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sm3(h) => h.update(bytes),
        }
    }

    fn finish_hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sm3(h) => hex::encode(h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(algo: HashAlgo) -> DigestRequest {
        DigestRequest {
            algo: Some(algo),
            sample_bytes: 4096,
        }
    }

    #[test]
    fn known_digests() {
        // FIPS 180-2 and GB/T 32905-2016 test vectors for "abc".
        assert_eq!(
            digest_bytes(HashAlgo::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest_bytes(HashAlgo::Sm3, b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn file_digest_matches_bytes_and_sample_is_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.php");
        let body: Vec<u8> = b"<?php eval($_POST['x']); ?>\n".repeat(146); // 4088 bytes
        std::fs::write(&path, &body).unwrap();
        let digest = digest_file(&path, full(HashAlgo::Sha256)).unwrap();
        assert_eq!(digest.hash.unwrap(), digest_bytes(HashAlgo::Sha256, &body));
        assert_eq!(
            digest.sample.unwrap().as_bytes(),
            body,
            "a file that fits is whole"
        );
        let sm3 = digest_file(&path, full(HashAlgo::Sm3)).unwrap();
        assert_eq!(sm3.hash.unwrap(), digest_bytes(HashAlgo::Sm3, &body));
    }

    #[test]
    fn a_longer_file_is_sampled_head_and_tail_so_appended_code_shows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.php");
        // A real page much longer than the sample, spanning several read chunks,
        // with a one-line backdoor appended.
        let mut body: Vec<u8> = b"<?php\n".to_vec();
        while body.len() < 2 * READ_CHUNK + 1000 {
            body.extend_from_slice(b"echo render_widget($page, $user); // template\n");
        }
        body.extend_from_slice(b"@eval($_POST['pass']);\n");
        std::fs::write(&path, &body).unwrap();
        for request in [
            full(HashAlgo::Sha256),
            DigestRequest {
                algo: None,
                sample_bytes: 4096,
            },
        ] {
            let digest = digest_file(&path, request).unwrap();
            let sample = digest.sample.unwrap();
            let (head, tail) = sample.split_once(SAMPLE_GAP).expect("head and tail");
            assert_eq!(head.as_bytes(), &body[..3072]);
            assert_eq!(tail.as_bytes(), &body[body.len() - 1024..]);
            assert!(tail.ends_with("@eval($_POST['pass']);\n"));
            assert_eq!(digest.hash.is_some(), request.algo.is_some());
        }
        // A NUL anywhere sampled makes it binary; so does one in the tail only.
        body.extend_from_slice(b"\0");
        std::fs::write(&path, &body).unwrap();
        assert_eq!(
            digest_file(&path, full(HashAlgo::Sha256)).unwrap().sample,
            None
        );
        // The tail is kept across chunk boundaries.
        let mut tail = Vec::new();
        for chunk in [&b"abcdef"[..], b"gh", b"i"] {
            keep_tail(&mut tail, chunk, 4);
        }
        assert_eq!(tail, b"fghi");
        assert_eq!(sample_split(4096, 4096), (4096, 0));
        assert_eq!(sample_split(4096, 4097), (3072, 1024));
        assert_eq!(sample_split(0, 10), (0, 0));
    }

    #[test]
    fn binary_files_get_no_sample_and_sample_only_requests_get_no_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        std::fs::write(&path, b"\x7fELF\x00\x01").unwrap();
        let digest = digest_file(&path, full(HashAlgo::Sha256)).unwrap();
        assert!(digest.hash.is_some());
        assert_eq!(digest.sample, None);
        let text = dir.path().join("t.txt");
        std::fs::write(&text, "hello").unwrap();
        let request = DigestRequest {
            algo: None,
            sample_bytes: 3,
        };
        let digest = digest_file(&text, request).unwrap();
        assert_eq!(digest.hash, None);
        assert_eq!(digest.sample.as_deref(), Some("hel"));
    }

    #[test]
    fn fifo_symlink_and_missing_file_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            digest_file(&fifo, full(HashAlgo::Sha256)),
            Err(HashError::NotRegular)
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        assert!(matches!(
            digest_file(&link, full(HashAlgo::Sha256)),
            Err(HashError::NotRegular)
        ));
        assert!(matches!(
            digest_file(&dir.path().join("nope"), full(HashAlgo::Sha256)),
            Err(HashError::Vanished)
        ));
        assert!(matches!(
            digest_file(dir.path(), full(HashAlgo::Sha256)),
            Err(HashError::NotRegular) | Err(HashError::Io(_))
        ));
    }

    #[test]
    fn deleted_mid_hash_is_vanished_and_rewritten_mid_hash_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'a'; 3 * READ_CHUNK]).unwrap();
        let doomed = path.clone();
        let result = digest_file_with_hook(&path, full(HashAlgo::Sha256), &mut || {
            std::fs::remove_file(&doomed).unwrap();
        });
        assert!(matches!(result, Err(HashError::Vanished)), "{result:?}");

        std::fs::write(&path, vec![b'a'; 3 * READ_CHUNK]).unwrap();
        let target = path.clone();
        let result = digest_file_with_hook(&path, full(HashAlgo::Sha256), &mut || {
            use std::io::Write;
            let mut f = OpenOptions::new().append(true).open(&target).unwrap();
            f.write_all(b"more").unwrap();
        });
        assert!(matches!(result, Err(HashError::Changed)), "{result:?}");
    }
}
